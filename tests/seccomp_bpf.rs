//! The compiled seccomp filters, run without a kernel.
//!
//! A small classic-BPF interpreter runs every compiled program of a plan over every x86_64
//! syscall number (assigned or not), through the x32 ABI and through i386, with chosen
//! arguments, and combines the verdicts of the stack the way the kernel does. An independent
//! model computes what the policy means from the plan's symbolic parts (`allowed`, `denied`,
//! `default_action` and their argument conditions) plus the architecture rules; the two must
//! agree everywhere. Tables of chosen calls then pin both to the verdicts the issue expects
//! for the presets and for rule combinations, and every shipped policy is checked against its
//! own model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;

use kekkai::caller::Caller;
use kekkai::plan::names;
use kekkai::plan::seccomp::{self, Action, Cond, Filter, MAX_INSTRUCTIONS, Match, Op, SeccompPlan};
use kekkai::plan::seccomp_presets as presets;
use kekkai::plan::{self, Diags};
use kekkai::policy::model::{HostPrivileges, Preset, Seccomp};
use kekkai::policy::{self, PolicySource};
use rstest::rstest;
use seccompiler::sock_filter;

// ── struct seccomp_data ──────────────────────────────────────────────────────────────────────

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// `struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }`.
#[derive(Debug, Clone, Copy)]
struct Data {
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

impl Data {
    fn x86_64(nr: i32, args: [u64; 6]) -> Data {
        Data {
            nr,
            arch: AUDIT_ARCH_X86_64,
            ip: 0x7f12_3456_789a,
            args,
        }
    }

    fn with_arch(self, arch: u32) -> Data {
        Data { arch, ..self }
    }

    /// The bytes the kernel hands the filter (little-endian x86).
    fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_le_bytes());
        b[4..8].copy_from_slice(&self.arch.to_le_bytes());
        b[8..16].copy_from_slice(&self.ip.to_le_bytes());
        for (i, a) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        b
    }
}

impl std::fmt::Display for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if self.arch == AUDIT_ARCH_X86_64 {
            names::syscall_name(i64::from(self.nr)).unwrap_or("?")
        } else {
            "-"
        };
        write!(
            f,
            "arch {:#x} nr {:#x} ({name}) args {:#x?}",
            self.arch, self.nr, self.args
        )
    }
}

// ── the classic BPF interpreter ──────────────────────────────────────────────────────────────

mod bpf {
    use super::sock_filter;

    /// BPF_MAXINSNS.
    pub const MAX_INSNS: usize = 4096;
    /// The kernel's limit on one call's path through a stack: the sum of (length + 4).
    pub const MAX_INSNS_PER_PATH: usize = 32768;
    const MEMWORDS: u32 = 16;

    /// The opcodes the kernel's `seccomp_check_filter` accepts (BPF_LD|BPF_W|BPF_LEN aside).
    const LD_W_ABS: u16 = 0x20;
    const LD_IMM: u16 = 0x00;
    const LD_MEM: u16 = 0x60;
    const LDX_IMM: u16 = 0x01;
    const LDX_MEM: u16 = 0x61;
    const ST: u16 = 0x02;
    const STX: u16 = 0x03;
    const ALU_NEG: u16 = 0x84;
    const JA: u16 = 0x05;
    const RET_K: u16 = 0x06;
    const RET_A: u16 = 0x16;
    const TAX: u16 = 0x07;
    const TXA: u16 = 0x87;
    /// ADD SUB MUL DIV OR AND LSH RSH XOR (no MOD: seccomp refuses it).
    const ALU_OPS: [u16; 9] = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0];
    /// JEQ JGT JGE JSET.
    const JMP_OPS: [u16; 4] = [0x10, 0x20, 0x30, 0x40];
    const SRC_X: u16 = 0x08;

    /// Class ALU, a known operation, K or X, nothing else set.
    fn is_alu(code: u16) -> bool {
        code & !0xf8 == 0x04 && ALU_OPS.contains(&(code & 0xf0))
    }

    /// Class JMP, a conditional jump, K or X, nothing else set.
    fn is_cond_jump(code: u16) -> bool {
        code & !0xf8 == 0x05 && JMP_OPS.contains(&(code & 0xf0))
    }

    /// Checks a program as the kernel's loader would, and stricter: panics on anything this
    /// interpreter doesn't implement, so a malformed program can't pass as an answer.
    pub fn check(prog: &[sock_filter]) {
        let len = prog.len();
        assert!((1..=MAX_INSNS).contains(&len), "program length {len}");
        for (pc, ins) in prog.iter().enumerate() {
            let k = ins.k;
            let ok = match ins.code {
                LD_W_ABS => k % 4 == 0 && k < 64,
                LD_MEM | LDX_MEM | ST | STX => k < MEMWORDS,
                LD_IMM | LDX_IMM | ALU_NEG | RET_K | RET_A | TAX | TXA => true,
                JA => usize::try_from(k).is_ok_and(|k| pc + 1 + k < len),
                c if is_alu(c) => {
                    c & SRC_X != 0
                        || match c & 0xf0 {
                            0x30 => k != 0,
                            0x60 | 0x70 => k < 32,
                            _ => true,
                        }
                }
                c if is_cond_jump(c) => {
                    pc + 1 + usize::from(ins.jt) < len && pc + 1 + usize::from(ins.jf) < len
                }
                _ => false,
            };
            assert!(ok, "instruction {pc} is invalid or unsupported: {ins:?}");
        }
        let last = prog[len - 1].code;
        assert!(
            last == RET_K || last == RET_A,
            "the last instruction is not a return"
        );
    }

    /// Checks one program, then runs it; returns what it returns.
    pub fn run(prog: &[sock_filter], data: &[u8; 64]) -> u32 {
        check(prog);
        exec(prog, data)
    }

    /// Runs a program that passed `check` (it still panics on falling off the end, on an
    /// unknown opcode and on running too long).
    pub fn exec(prog: &[sock_filter], data: &[u8; 64]) -> u32 {
        let (mut a, mut x) = (0u32, 0u32);
        let mut mem = [None::<u32>; 16];
        let mut pc = 0usize;
        for _ in 0..MAX_INSNS {
            let ins = prog
                .get(pc)
                .unwrap_or_else(|| panic!("fell off the end at {pc}"));
            pc += 1;
            let k = ins.k;
            let slot = usize::try_from(k).unwrap_or(usize::MAX);
            let src = if ins.code & SRC_X != 0 { x } else { k };
            match ins.code {
                LD_W_ABS => {
                    let at = slot;
                    a = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
                }
                LD_IMM => a = k,
                LDX_IMM => x = k,
                LD_MEM => a = mem[slot].expect("read of unwritten scratch memory"),
                LDX_MEM => x = mem[slot].expect("read of unwritten scratch memory"),
                ST => mem[slot] = Some(a),
                STX => mem[slot] = Some(x),
                TAX => x = a,
                TXA => a = x,
                ALU_NEG => a = a.wrapping_neg(),
                RET_K => return k,
                RET_A => return a,
                JA => pc += slot,
                c if is_alu(c) => {
                    a = match c & 0xf0 {
                        0x00 => a.wrapping_add(src),
                        0x10 => a.wrapping_sub(src),
                        0x20 => a.wrapping_mul(src),
                        // Classic BPF: division by a zero X ends the program with 0.
                        0x30 if src == 0 => return 0,
                        0x30 => a / src,
                        0x40 => a | src,
                        0x50 => a & src,
                        0x60 => a.checked_shl(src).expect("shift by 32 or more"),
                        0x70 => a.checked_shr(src).expect("shift by 32 or more"),
                        _ => a ^ src,
                    }
                }
                c if is_cond_jump(c) => {
                    let taken = match c & 0xf0 {
                        0x10 => a == src,
                        0x20 => a > src,
                        0x30 => a >= src,
                        _ => a & src != 0,
                    };
                    pc += usize::from(if taken { ins.jt } else { ins.jf });
                }
                c => panic!("unsupported opcode {c:#x} at {}", pc - 1),
            }
        }
        panic!("more than {MAX_INSNS} instructions executed")
    }

    /// The action part of a return value, ordered as the kernel orders it (lowest wins).
    pub fn action_of(ret: u32) -> i32 {
        i32::from_ne_bytes((ret & 0xffff_0000).to_ne_bytes())
    }
}

/// The kernel's rule for a stack: every filter runs; the verdict with the lowest action value
/// wins; among equal ones, the most recently installed filter's (the last in `filters`).
/// No filter at all allows.
fn run_stack(filters: &[Filter], d: &Data) -> u32 {
    Stack::new(filters).run(d)
}

/// A stack whose programs have been checked once.
struct Stack<'a>(&'a [Filter]);

impl<'a> Stack<'a> {
    fn new(filters: &'a [Filter]) -> Stack<'a> {
        for f in filters {
            bpf::check(&f.program);
        }
        Stack(filters)
    }

    fn run(&self, d: &Data) -> u32 {
        let bytes = d.bytes();
        let mut ret = RET_ALLOW;
        for f in self.0.iter().rev() {
            let cur = bpf::exec(&f.program, &bytes);
            if bpf::action_of(cur) < bpf::action_of(ret) {
                ret = cur;
            }
        }
        ret
    }
}

const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

/// A return value as the plan's vocabulary; panics on anything kekkai never asks for.
fn decode(ret: u32) -> Action {
    match ret & 0xffff_0000 {
        RET_KILL_PROCESS => Action::KillProcess,
        RET_KILL_THREAD => Action::KillThread,
        RET_TRAP => Action::Trap,
        RET_ERRNO => Action::Errno(ret & 0xffff),
        RET_LOG => Action::Log,
        RET_ALLOW => Action::Allow,
        _ => panic!("unexpected return value {ret:#x}"),
    }
}

fn encode(a: Action) -> u32 {
    match a {
        Action::KillProcess => RET_KILL_PROCESS,
        Action::KillThread => RET_KILL_THREAD,
        Action::Trap => RET_TRAP,
        Action::Errno(n) => RET_ERRNO | n,
        Action::Log => RET_LOG,
        Action::Allow => RET_ALLOW,
    }
}

// ── the model: what the policy means ─────────────────────────────────────────────────────────

/// One condition, as documented: unsigned comparisons of the low 32 bits or all 64;
/// `mask` and-s the argument before comparing it with the value.
fn holds(c: &Cond, args: &[u64; 6]) -> bool {
    let low = |v: u64| v & 0xffff_ffff;
    let (arg, value) = if c.width32 {
        (low(args[usize::from(c.arg)]), low(c.value))
    } else {
        (args[usize::from(c.arg)], c.value)
    };
    match c.op {
        Op::Eq => arg == value,
        Op::Ne => arg != value,
        Op::Lt => arg < value,
        Op::Le => arg <= value,
        Op::Gt => arg > value,
        Op::Ge => arg >= value,
        Op::MaskedEq(mask) => arg & mask == value,
    }
}

fn matches(m: &Match, args: &[u64; 6]) -> bool {
    match m {
        Match::Always => true,
        Match::When(sets) => sets.iter().any(|all| all.iter().all(|c| holds(c, args))),
    }
}

/// How strict an answer is: kill-process, kill-thread, trap, errno, log, allow.
fn severity(a: Action) -> u8 {
    match a {
        Action::KillProcess => 0,
        Action::KillThread => 1,
        Action::Trap => 2,
        Action::Errno(_) => 3,
        Action::Log => 4,
        Action::Allow => 5,
    }
}

/// What the policy says about one call.
fn model(plan: &SeccompPlan, d: &Data) -> Action {
    // `none` without deny rules: no filter, everything passes (also i386 and x32).
    if plan.preset == Preset::None && plan.denied.is_empty() {
        return Action::Allow;
    }
    // Only the native ABI: i386 (and any other architecture) and x32 calls kill. x32 numbers
    // carry bit 30; no x86_64 syscall number comes near it, so everything from there up is
    // treated the same (that includes "negative" numbers).
    if d.arch != AUDIT_ARCH_X86_64 || d.nr as u32 >= X32_SYSCALL_BIT {
        return Action::KillProcess;
    }
    let nr = i64::from(d.nr);
    let mut verdict = if plan.preset == Preset::None
        || plan.allowed.get(&nr).is_some_and(|m| matches(m, &d.args))
    {
        Action::Allow
    } else {
        plan.default_action
    };
    // Deny rules: the strictest answer applies; at equal strictness (two errnos) the deny rule
    // beats the allowlist, and a later deny filter an earlier one.
    for (action, rules) in &plan.denied {
        if rules.get(&nr).is_some_and(|m| matches(m, &d.args))
            && severity(*action) <= severity(verdict)
        {
            verdict = *action;
        }
    }
    verdict
}

// ── helpers ──────────────────────────────────────────────────────────────────────────────────

/// A seccomp section as the language compiles it by default (`host-privileges: deny`).
fn compile_yaml(yaml: &str) -> SeccompPlan {
    compile_yaml_with(yaml, HostPrivileges::Deny)
}

fn compile_yaml_with(yaml: &str, host: HostPrivileges) -> SeccompPlan {
    let spec: Seccomp =
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: not a seccomp section: {e}"));
    let mut diags = Diags::default();
    let plan = seccomp::compile(Some(&spec), host, &mut diags);
    assert!(diags.is_empty(), "{yaml}: {:?}", diags.into_pairs());
    plan.unwrap()
}

fn pad(args: &[u64]) -> [u64; 6] {
    let mut out = [0; 6];
    out[..args.len()].copy_from_slice(args);
    out
}

/// An x86_64 call by name.
fn x(name: &str, args: &[u64]) -> Data {
    let nr = names::syscall_number(name).unwrap_or_else(|| panic!("no syscall {name}"));
    Data::x86_64(i32::try_from(nr).unwrap(), pad(args))
}

/// An x86_64 call by number.
fn nr(n: i32, args: &[u64]) -> Data {
    Data::x86_64(n, pad(args))
}

/// The same syscall through the x32 ABI.
fn x32(name: &str) -> Data {
    let d = x(name, &[]);
    Data {
        nr: (d.nr as u32 | X32_SYSCALL_BIT) as i32,
        ..d
    }
}

/// An i386 call (`int 0x80`), by i386 number.
fn i386(n: i32) -> Data {
    Data::x86_64(n, [0; 6]).with_arch(AUDIT_ARCH_I386)
}

/// Asserts that both the filters and the model give `want`.
fn expect(plan: &SeccompPlan, call: Data, want: Action) {
    let got = run_stack(&plan.filters, &call);
    assert_eq!(
        (decode(got), got),
        (want, encode(want)),
        "BPF verdict for {call}"
    );
    assert_eq!(model(plan, &call), want, "model verdict for {call}");
}

/// Each filter fits the kernel's limits and passes the static checks.
fn check_sizes(label: &str, plan: &SeccompPlan) {
    let mut path = 0;
    for f in &plan.filters {
        assert!(
            f.program.len() <= MAX_INSTRUCTIONS && f.program.len() <= bpf::MAX_INSNS,
            "{label}: filter \"{}\" has {} instructions",
            f.name,
            f.program.len()
        );
        bpf::check(&f.program);
        path += f.program.len() + 4;
    }
    assert!(path <= bpf::MAX_INSNS_PER_PATH, "{label}: {path} per path");
}

const ZERO: [u64; 6] = [0; 6];
const ONES: u64 = u64::MAX;
const HIGH: u64 = 0xffff_ffff_0000_0000;

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
        (0x4000_0000u32 | 0x8000_0000) as i32,
    ];
    for n in beyond {
        compare(nr(n, &ZERO));
    }
    // Everything through x32 or i386 kills, whatever the arguments.
    let mut foreign = Vec::new();
    for n in 0..=600u32 {
        foreign.push(nr((n | X32_SYSCALL_BIT) as i32, &ZERO));
        foreign.push(nr((n | X32_SYSCALL_BIT) as i32, &[ONES; 6]));
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

// ── the interpreter itself ───────────────────────────────────────────────────────────────────

fn ins(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

#[test]
fn the_interpreter_reads_seccomp_data_little_endian() {
    let d = Data {
        nr: 0x0102_0304,
        arch: 0x0506_0708,
        ip: 0x1112_1314_1516_1718,
        args: [0x2122_2324_2526_2728, 0, 0, 0, 0, 0x3132_3334_3536_3738],
    };
    let b = d.bytes();
    let load = |off| bpf::run(&[ins(0x20, 0, 0, off), ins(0x16, 0, 0, 0)], &b);
    assert_eq!(load(0), 0x0102_0304);
    assert_eq!(load(4), 0x0506_0708);
    assert_eq!(load(8), 0x1516_1718);
    assert_eq!(load(12), 0x1112_1314);
    assert_eq!(load(16), 0x2526_2728);
    assert_eq!(load(20), 0x2122_2324);
    assert_eq!(load(56), 0x3536_3738);
    assert_eq!(load(60), 0x3132_3334);
}

#[test]
fn the_interpreter_computes_and_jumps() {
    let b = Data::x86_64(7, [5, 0, 0, 0, 0, 0]).bytes();
    // Every ALU operation, scratch memory, TAX/TXA, and each conditional jump with K and X.
    let prog = [
        ins(0x20, 0, 0, 0),  // A = nr (7)
        ins(0x24, 0, 0, 3),  // A *= 3
        ins(0x01, 0, 0, 16), // X = 16
        ins(0x0c, 0, 0, 0),  // A += X  → 37
        ins(0x14, 0, 0, 11), // A -= 11 → 26
        ins(0x02, 0, 0, 2),  // M[2] = A
        ins(0x07, 0, 0, 0),  // X = A
        ins(0x00, 0, 0, 26), // A = 26
        ins(0x1d, 1, 0, 0),  // A == X ?
        ins(0x06, 0, 0, 1),
        ins(0x45, 1, 0, 0x2), // A & 2 ?
        ins(0x06, 0, 0, 2),
        ins(0x3d, 1, 0, 0), // A >= X ?
        ins(0x06, 0, 0, 3),
        ins(0x2d, 0, 1, 0), // A > X ? (no)
        ins(0x06, 0, 0, 4),
        ins(0x64, 0, 0, 4), // A <<= 4 → 416
        ins(0x74, 0, 0, 1), // A >>= 1 → 208
        ins(0x34, 0, 0, 8), // A /= 8 → 26
        ins(0xa4, 0, 0, 1), // A ^= 1 → 27
        ins(0x44, 0, 0, 4), // A |= 4 → 31
        ins(0x54, 0, 0, 6), // A &= 6 → 6
        ins(0x84, 0, 0, 0), // A = -A
        ins(0x61, 0, 0, 2), // X = M[2] (26)
        ins(0x87, 0, 0, 0), // A = X
        ins(0x05, 0, 0, 1), // JA +1
        ins(0x06, 0, 0, 5), // skipped
        ins(0x16, 0, 0, 0), // RET A
    ];
    assert_eq!(bpf::run(&prog, &b), 26);
}

#[rstest]
#[case::empty(vec![])]
#[case::no_return_at_the_end(vec![ins(0x20, 0, 0, 0)])]
#[case::jump_out_of_range(vec![ins(0x15, 5, 0, 1), ins(0x06, 0, 0, 0)])]
#[case::ja_out_of_range(vec![ins(0x05, 0, 0, 1), ins(0x06, 0, 0, 0)])]
#[case::unaligned_load(vec![ins(0x20, 0, 0, 2), ins(0x16, 0, 0, 0)])]
#[case::load_past_the_data(vec![ins(0x20, 0, 0, 64), ins(0x16, 0, 0, 0)])]
#[case::byte_load(vec![ins(0x30, 0, 0, 0), ins(0x16, 0, 0, 0)])]
#[case::indirect_load(vec![ins(0x40, 0, 0, 0), ins(0x16, 0, 0, 0)])]
#[case::modulo(vec![ins(0x94, 0, 0, 3), ins(0x16, 0, 0, 0)])]
#[case::division_by_zero(vec![ins(0x34, 0, 0, 0), ins(0x16, 0, 0, 0)])]
#[case::shift_by_32(vec![ins(0x64, 0, 0, 32), ins(0x16, 0, 0, 0)])]
#[case::return_x(vec![ins(0x0e, 0, 0, 0)])]
#[case::scratch_out_of_range(vec![ins(0x02, 0, 0, 16), ins(0x06, 0, 0, 0)])]
#[case::unwritten_scratch(vec![ins(0x60, 0, 0, 3), ins(0x16, 0, 0, 0)])]
#[case::too_long(vec![ins(0x06, 0, 0, 0); 4097])]
#[should_panic]
fn the_interpreter_rejects(#[case] prog: Vec<sock_filter>) {
    bpf::run(&prog, &Data::x86_64(0, ZERO).bytes());
}

#[test]
fn the_stack_takes_the_strictest_and_the_latest_among_equals() {
    let ret = |k| Filter {
        name: format!("{k:#x}"),
        program: vec![ins(0x06, 0, 0, k)],
    };
    let d = Data::x86_64(0, ZERO);
    let stack = |ks: &[u32]| run_stack(&ks.iter().map(|k| ret(*k)).collect::<Vec<_>>(), &d);
    assert_eq!(stack(&[]), RET_ALLOW);
    assert_eq!(stack(&[RET_ALLOW, RET_ERRNO | 1, RET_LOG]), RET_ERRNO | 1);
    assert_eq!(stack(&[RET_ERRNO | 1, RET_ERRNO | 38]), RET_ERRNO | 38);
    assert_eq!(stack(&[RET_ERRNO | 38, RET_ERRNO | 1]), RET_ERRNO | 1);
    assert_eq!(stack(&[RET_KILL_THREAD, RET_TRAP]), RET_KILL_THREAD);
    assert_eq!(
        stack(&[RET_KILL_PROCESS, RET_KILL_THREAD]),
        RET_KILL_PROCESS
    );
    assert_eq!(stack(&[RET_LOG, RET_ALLOW]), RET_LOG);
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
#[case::tiocsti_compare(1, 0x5412, 0x5413)]
#[case::x32_guard(0, X32_SYSCALL_BIT, X32_SYSCALL_BIT + 1)]
#[case::clone_mask(1, 0x7E02_0000, 0x7E00_0000)]
#[case::socket_family(1, 10, 11)]
#[case::setuid_bit(2, 0o4000, 0o4001)]
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
fn long_rule() -> String {
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
        // The issue's headline calls, whatever the preset.
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

// ── chosen calls: `default` ──────────────────────────────────────────────────────────────────

const ALLOW: Action = Action::Allow;
const LOG: Action = Action::Log;
const KILL: Action = Action::KillProcess;
const TRAP: Action = Action::Trap;
const EPERM: Action = Action::Errno(libc::EPERM as u32);
const EACCES: Action = Action::Errno(libc::EACCES as u32);
const ENOSYS: Action = Action::Errno(libc::ENOSYS as u32);
const EAFNOSUPPORT: Action = Action::Errno(libc::EAFNOSUPPORT as u32);

const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;
const TCGETS: u64 = 0x5401;
const TIOCSETD: u64 = 0x5423;
const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_THREAD: u64 = 0x1_0000;
const CLONE_SYSVSEM: u64 = 0x4_0000;
const CLONE_SETTLS: u64 = 0x8_0000;
const CLONE_PARENT_SETTID: u64 = 0x10_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
const CLONE_CHILD_SETTID: u64 = 0x100_0000;
/// What glibc's pthread_create passes.
const THREAD_FLAGS: u64 = CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND
    | CLONE_THREAD
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID;
/// What fork() passes through clone.
const FORK_FLAGS: u64 = CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | libc::SIGCHLD as u64;
const CLONE_NEWNS: u64 = 0x2_0000;
const CLONE_NEWCGROUP: u64 = 0x200_0000;
const CLONE_NEWUTS: u64 = 0x400_0000;
const CLONE_NEWIPC: u64 = 0x800_0000;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWPID: u64 = 0x2000_0000;
const CLONE_NEWNET: u64 = 0x4000_0000;
const AF_UNIX: u64 = 1;
const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;
const AF_NETLINK: u64 = 16;
const NETLINK_ROUTE: u64 = 0;
const NETLINK_SOCK_DIAG: u64 = 4;
const NETLINK_AUDIT: u64 = 9;
const NETLINK_NETFILTER: u64 = 12;
const NETLINK_KOBJECT_UEVENT: u64 = 15;
const SOCK_CLOEXEC: u64 = 0o2000000;
const AF_PACKET: u64 = 17;
const AF_VSOCK: u64 = 40;
const ADDR_NO_RANDOMIZE: u64 = 0x0040000;
const READ_IMPLIES_EXEC: u64 = 0x0400000;

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
#[case::socketpair(x("socketpair", &[AF_UNIX, 1]), EPERM)]
#[case::connect(x("connect", &[3]), EPERM)]
#[case::bind(x("bind", &[3]), EPERM)]
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
    assert_eq!(plan.filters.len(), 3);
    expect(&plan, call, want);
}

// ── chosen calls: host-privileges ────────────────────────────────────────────────────────────

const AT_FDCWD: u64 = -100i64 as u64;
const O_WRONLY: u64 = 0o1;
const O_CREAT: u64 = 0o100;
const O_DIRECTORY: u64 = 0o200000;
const O_TMPFILE: u64 = 0o20000000 | O_DIRECTORY;
const S_IFIFO: u64 = 0o010000;
const S_IFCHR: u64 = 0o020000;
const S_IFBLK: u64 = 0o060000;
const S_IFREG: u64 = 0o100000;
const S_IFSOCK: u64 = 0o140000;
/// i386 `chmod` (`int 0x80`): 15.
const I386_CHMOD: i32 = 15;

/// An i386 call with arguments.
fn i386_with(n: i32, args: &[u64]) -> Data {
    Data::x86_64(n, pad(args)).with_arch(AUDIT_ARCH_I386)
}

/// The same answers under every preset: ordinary modes pass, setuid and setgid modes and device
/// nodes get EPERM, openat2 ENOSYS, i386 calls are killed.
#[rstest]
#[case::chmod_755(x("chmod", &[0, 0o755]), ALLOW)]
#[case::chmod_sticky(x("chmod", &[0, 0o1777]), ALLOW)]
#[case::chmod_4755(x("chmod", &[0, 0o4755]), EPERM)]
#[case::chmod_2755(x("chmod", &[0, 0o2755]), EPERM)]
#[case::chmod_6755(x("chmod", &[0, 0o6755]), EPERM)]
// umode_t: the kernel reads 16 bits, the filter 32; junk above either still finds the bit.
#[case::chmod_4755_high_junk(x("chmod", &[0, HIGH | 0o4755]), EPERM)]
#[case::chmod_755_high_junk(x("chmod", &[0, HIGH | 0x1_0000 | 0o755]), ALLOW)]
#[case::fchmod_4755(x("fchmod", &[3, 0o4755]), EPERM)]
#[case::fchmod_644(x("fchmod", &[3, 0o644]), ALLOW)]
#[case::fchmodat_2700(x("fchmodat", &[AT_FDCWD, 0, 0o2700]), EPERM)]
#[case::fchmodat_mode_is_arg_2(x("fchmodat", &[AT_FDCWD, 0o4755, 0o755]), ALLOW)]
#[case::fchmodat2_4755(x("fchmodat2", &[AT_FDCWD, 0, 0o4755, 0x100]), EPERM)]
#[case::open_creat_4755(x("open", &[0, O_CREAT | O_WRONLY, 0o4755]), EPERM)]
#[case::open_creat_644(x("open", &[0, O_CREAT | O_WRONLY, 0o644]), ALLOW)]
// Without O_CREAT or O_TMPFILE the kernel ignores the mode (Rust's std passes 0o666 anyway).
#[case::open_read_any_mode(x("open", &[0, 0, 0o4755]), ALLOW)]
#[case::open_tmpfile_4700(x("open", &[0, O_TMPFILE | O_WRONLY, 0o4700]), EPERM)]
#[case::openat_creat_4755(x("openat", &[AT_FDCWD, 0, O_CREAT | O_WRONLY, 0o4755]), EPERM)]
#[case::openat_creat_2755(x("openat", &[AT_FDCWD, 0, O_CREAT, 0o2755]), EPERM)]
#[case::openat_creat_flags_high_junk(x("openat", &[AT_FDCWD, 0, HIGH | O_CREAT, HIGH | 0o4755]), EPERM)]
#[case::openat_tmpfile_4700(x("openat", &[AT_FDCWD, 0, O_TMPFILE | O_WRONLY, 0o4700]), EPERM)]
#[case::openat_creat_644(x("openat", &[AT_FDCWD, 0, O_CREAT | O_WRONLY, 0o644]), ALLOW)]
#[case::openat_read_any_mode(x("openat", &[AT_FDCWD, 0, 0, 0o4755]), ALLOW)]
#[case::creat_4755(x("creat", &[0, 0o4755]), EPERM)]
#[case::creat_644(x("creat", &[0, 0o644]), ALLOW)]
#[case::mkdir_755(x("mkdir", &[0, 0o755]), ALLOW)]
#[case::mkdir_2775(x("mkdir", &[0, 0o2775]), EPERM)]
#[case::mkdirat_1777(x("mkdirat", &[AT_FDCWD, 0, 0o1777]), ALLOW)]
#[case::mkdirat_4755(x("mkdirat", &[AT_FDCWD, 0, 0o4755]), EPERM)]
#[case::mknod_fifo(x("mknod", &[0, S_IFIFO | 0o644, 0]), ALLOW)]
#[case::mknod_socket(x("mknod", &[0, S_IFSOCK | 0o644, 0]), ALLOW)]
#[case::mknod_regular(x("mknod", &[0, S_IFREG | 0o644, 0]), ALLOW)]
#[case::mknod_regular_setuid(x("mknod", &[0, S_IFREG | 0o4755, 0]), EPERM)]
#[case::mknod_char(x("mknod", &[0, S_IFCHR | 0o600, 0x103]), EPERM)]
#[case::mknod_block(x("mknod", &[0, S_IFBLK | 0o600, 0x800]), EPERM)]
#[case::mknodat_char(x("mknodat", &[AT_FDCWD, 0, S_IFCHR | 0o600, 0x103]), EPERM)]
#[case::mknodat_fifo(x("mknodat", &[AT_FDCWD, 0, S_IFIFO | 0o600, 0]), ALLOW)]
#[case::openat2(x("openat2", &[AT_FDCWD, 0, 0, 24]), ENOSYS)]
#[case::i386_chmod_setuid(i386_with(I386_CHMOD, &[0, 0o4755]), KILL)]
#[case::x32_chmod(x32("chmod"), KILL)]
fn host_privileges_deny(
    #[values("{}", "{preset: strict}", "{preset: log}", "{preset: none}")] yaml: &str,
    #[case] call: Data,
    #[case] want: Action,
) {
    expect(&compile_yaml(yaml), call, want);
}

/// io_uring opens files with modes in shared memory: `default` and `strict` deny it with their
/// default action; without an allowlist, host-privileges answers ENOSYS.
#[rstest]
#[case::default("{}", EPERM)]
#[case::strict("{preset: strict}", EPERM)]
#[case::log("{preset: log}", ENOSYS)]
#[case::none("{preset: none}", ENOSYS)]
fn host_privileges_and_io_uring(#[case] yaml: &str, #[case] want: Action) {
    expect(&compile_yaml(yaml), x("io_uring_setup", &[8, 0]), want);
}

#[rstest]
#[case::chmod_4755(x("chmod", &[0, 0o4755]), ALLOW)]
#[case::openat_creat_4755(x("openat", &[AT_FDCWD, 0, O_CREAT | O_WRONLY, 0o4755]), ALLOW)]
#[case::mknod_char(x("mknod", &[0, S_IFCHR | 0o600, 0x103]), ALLOW)]
#[case::openat2(x("openat2", &[AT_FDCWD, 0, 0, 24]), ALLOW)]
// The preset is still there: the architecture guard with it.
#[case::i386_chmod(i386_with(I386_CHMOD, &[0, 0o4755]), KILL)]
fn host_privileges_allow(#[case] call: Data, #[case] want: Action) {
    expect(&compile_yaml_with("{}", HostPrivileges::Allow), call, want);
}

/// A policy's own outright denial of a call keeps its own answer.
#[rstest]
#[case::openat2_eacces("{deny: [{syscall: openat2, action: errno(EACCES)}]}", x("openat2", &[]), EACCES)]
#[case::chmod_kill("{deny: [{syscall: chmod, action: kill}]}", x("chmod", &[0, 0o4755]), KILL)]
#[case::chmod_default("{deny: [chmod]}", x("chmod", &[0, 0o4755]), EPERM)]
#[case::chmod_allowed_outright_keeps_the_rule("{allow: [chmod]}", x("chmod", &[0, 0o4755]), EPERM)]
fn host_privileges_and_the_policys_rules(
    #[case] yaml: &str,
    #[case] call: Data,
    #[case] want: Action,
) {
    expect(&compile_yaml(yaml), call, want);
}

// ── chosen calls: rule combinations ──────────────────────────────────────────────────────────

const DENY_IOCTL_KILL: &str =
    "{deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCSETD}], action: kill}]}";
const ALLOW_DENIED: &str =
    "{allow: [ptrace, clone3, {syscall: personality, args: [{arg: 0, width: 32, eq: 0x0040000}]}]}";
const UNIX_ONLY: &str = "{socket-families: [unix]}";
const KILL_BY_DEFAULT: &str = "{default-action: kill}";
const DENYLIST: &str = "{preset: none, deny: [ptrace, {syscall: kexec_load, action: kill}, {syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCSTI}], action: errno(EACCES)}]}";
const STACKED: &str = "{deny: [write, {syscall: getpid, action: kill}, {syscall: getppid, action: errno(EACCES)}, {syscall: kill, args: [{arg: 1, width: 32, eq: 9}], action: trap}, {syscall: clone3, action: kill}]}";
const REFERENCE: &str = "{allow: [ptrace, {syscall: personality, args: [{arg: 0, width: 32, eq: 0x0040000}]}], deny: [mknod, {syscall: clone, args: [{arg: 0, width: 64, mask: CLONE_NEWUSER, eq: CLONE_NEWUSER}], action: kill}, {syscall: socket, args: [{arg: 0, width: 32, eq: AF_NETLINK}], action: errno(EAFNOSUPPORT)}], socket-families: [unix, inet, inet6, netlink]}";
const STRICT_SOCKETS: &str = "{preset: strict, socket-families: [unix]}";
const ROUTE_ONLY: &str = "{socket-families: [netlink-route]}";
const STRICT_ROUTE: &str = "{preset: strict, socket-families: [NETLINK_ROUTE]}";

#[rstest]
#[case::kill_rule_tiocsetd(DENY_IOCTL_KILL, x("ioctl", &[0, TIOCSETD]), KILL)]
#[case::kill_rule_tiocsetd_high_junk(DENY_IOCTL_KILL, x("ioctl", &[0, HIGH | TIOCSETD]), KILL)]
#[case::kill_rule_leaves_tiocsti_eperm(DENY_IOCTL_KILL, x("ioctl", &[0, TIOCSTI]), EPERM)]
#[case::kill_rule_leaves_tcgets(DENY_IOCTL_KILL, x("ioctl", &[0, TCGETS]), ALLOW)]
#[case::allowed_ptrace(ALLOW_DENIED, x("ptrace", &[]), ALLOW)]
#[case::allowed_clone3(ALLOW_DENIED, x("clone3", &[]), ALLOW)]
#[case::allowed_personality(ALLOW_DENIED, x("personality", &[ADDR_NO_RANDOMIZE]), ALLOW)]
#[case::allowed_personality_keeps_others(ALLOW_DENIED, x("personality", &[READ_IMPLIES_EXEC]), EPERM)]
#[case::allowed_personality_keeps_the_preset(ALLOW_DENIED, x("personality", &[8]), ALLOW)]
#[case::allow_leaves_mount(ALLOW_DENIED, x("mount", &[]), EPERM)]
#[case::unix_only_unix(UNIX_ONLY, x("socket", &[AF_UNIX]), ALLOW)]
#[case::unix_only_inet(UNIX_ONLY, x("socket", &[AF_INET]), EPERM)]
#[case::unix_only_inet6(UNIX_ONLY, x("socket", &[AF_INET6]), EPERM)]
#[case::unix_only_high_junk(UNIX_ONLY, x("socket", &[HIGH | AF_UNIX]), ALLOW)]
#[case::unix_only_connect(UNIX_ONLY, x("connect", &[]), ALLOW)]
// A list of its own replaces the default set, netlink-route with the rest.
#[case::unix_only_netlink_route(UNIX_ONLY, x("socket", &[AF_NETLINK, 3, NETLINK_ROUTE]), EPERM)]
#[case::route_only_route(ROUTE_ONLY, x("socket", &[AF_NETLINK, 3, NETLINK_ROUTE]), ALLOW)]
#[case::route_only_audit(ROUTE_ONLY, x("socket", &[AF_NETLINK, 3, NETLINK_AUDIT]), EPERM)]
#[case::route_only_unix(ROUTE_ONLY, x("socket", &[AF_UNIX, 1]), EPERM)]
#[case::strict_route_route(STRICT_ROUTE, x("socket", &[AF_NETLINK, 3, NETLINK_ROUTE]), ALLOW)]
#[case::strict_route_sendmsg(STRICT_ROUTE, x("sendmsg", &[]), ALLOW)]
#[case::strict_route_unix(STRICT_ROUTE, x("socket", &[AF_UNIX, 1]), EPERM)]
#[case::no_sockets("{socket-families: []}", x("socket", &[AF_UNIX]), EPERM)]
#[case::kill_default_ptrace(KILL_BY_DEFAULT, x("ptrace", &[]), KILL)]
#[case::kill_default_unassigned(KILL_BY_DEFAULT, nr(400, &[]), KILL)]
#[case::kill_default_tiocsti(KILL_BY_DEFAULT, x("ioctl", &[0, TIOCSTI]), KILL)]
#[case::kill_default_newuser(KILL_BY_DEFAULT, x("clone", &[CLONE_NEWUSER]), KILL)]
#[case::kill_default_netlink(KILL_BY_DEFAULT, x("socket", &[AF_NETLINK, 3, NETLINK_AUDIT]), KILL)]
#[case::kill_default_netlink_route(KILL_BY_DEFAULT, x("socket", &[AF_NETLINK, 3, NETLINK_ROUTE]), ALLOW)]
#[case::kill_default_read(KILL_BY_DEFAULT, x("read", &[]), ALLOW)]
#[case::denylist_ptrace(DENYLIST, x("ptrace", &[]), EPERM)]
#[case::denylist_kexec(DENYLIST, x("kexec_load", &[]), KILL)]
#[case::denylist_tiocsti(DENYLIST, x("ioctl", &[0, HIGH | TIOCSTI]), EACCES)]
#[case::denylist_tcgets(DENYLIST, x("ioctl", &[0, TCGETS]), ALLOW)]
#[case::denylist_mount(DENYLIST, x("mount", &[]), ALLOW)]
#[case::denylist_unassigned(DENYLIST, nr(400, &[]), ALLOW)]
#[case::denylist_keeps_the_guard_x32(DENYLIST, x32("read"), KILL)]
#[case::denylist_keeps_the_guard_i386(DENYLIST, i386(3), KILL)]
#[case::stacked_write(STACKED, x("write", &[]), EPERM)]
#[case::stacked_getpid(STACKED, x("getpid", &[]), KILL)]
#[case::stacked_getppid(STACKED, x("getppid", &[]), EACCES)]
#[case::stacked_kill_9(STACKED, x("kill", &[1, 9]), TRAP)]
#[case::stacked_kill_15(STACKED, x("kill", &[1, 15]), ALLOW)]
#[case::stacked_clone3_kill_beats_enosys(STACKED, x("clone3", &[]), KILL)]
#[case::reference_ptrace(REFERENCE, x("ptrace", &[]), ALLOW)]
#[case::reference_mknod(REFERENCE, x("mknod", &[]), EPERM)]
#[case::reference_newuser(REFERENCE, x("clone", &[CLONE_NEWUSER]), KILL)]
#[case::reference_newuser_and_more(REFERENCE, x("clone", &[THREAD_FLAGS | CLONE_NEWUSER]), KILL)]
#[case::reference_newns(REFERENCE, x("clone", &[CLONE_NEWNS]), EPERM)]
#[case::reference_netlink(REFERENCE, x("socket", &[AF_NETLINK]), EAFNOSUPPORT)]
#[case::reference_packet(REFERENCE, x("socket", &[AF_PACKET]), EPERM)]
#[case::reference_inet(REFERENCE, x("socket", &[AF_INET]), ALLOW)]
#[case::reference_no_randomize(REFERENCE, x("personality", &[ADDR_NO_RANDOMIZE]), ALLOW)]
#[case::strict_sockets_unix(STRICT_SOCKETS, x("socket", &[AF_UNIX]), ALLOW)]
#[case::strict_sockets_inet(STRICT_SOCKETS, x("socket", &[AF_INET]), EPERM)]
// With `socket-families`, `strict` also allows the socket calls (connect, bind, ...), as
// docs/policy.md says.
#[case::strict_sockets_connect(STRICT_SOCKETS, x("connect", &[]), ALLOW)]
#[case::strict_sockets_shmget(STRICT_SOCKETS, x("shmget", &[]), EPERM)]
fn rule_combinations(#[case] yaml: &str, #[case] call: Data, #[case] want: Action) {
    expect(&compile_yaml(yaml), call, want);
}

// ── found discrepancies ──────────────────────────────────────────────────────────────────────

/// docs/policy.md: "`mask` — the argument is and-ed with the mask before the comparison", so
/// `{mask: 0xff, eq: 0x110}` can never hold. seccompiler masks the value too and compares
/// `(arg & 0xff) == 0x10`: this allow rule lets `ptrace(PTRACE_ATTACH = 0x10)` through although
/// the policy, read as documented, never allows ptrace.
/// kekkai refuses such a rule when compiling, naming the condition.
#[test]
fn a_masked_value_outside_its_mask_never_matches() {
    let spec: Seccomp = serde_yaml::from_str(
        "{allow: [{syscall: ptrace, args: [{arg: 0, width: 64, mask: 0xff, eq: 0x110}]}]}",
    )
    .unwrap();
    let mut diags = Diags::default();
    let plan = kekkai::plan::seccomp::compile(Some(&spec), HostPrivileges::Deny, &mut diags);
    assert!(plan.is_none() || !diags.is_empty());
    let errs = diags.into_pairs();
    assert!(
        errs.iter()
            .any(|(p, m)| p == "seccomp.allow[0].args[0].eq" && m.contains("outside the mask")),
        "{errs:?}"
    );
}

/// docs/policy.md: "`clone3`: fails with `ENOSYS` (the filter can't read its flags), so C
/// libraries fall back to `clone`" — glibc 2.34 and later try clone3 first for every
/// pthread_create and posix_spawn. The ENOSYS answer comes from its own filter, but the
/// allowlist filter doesn't list clone3 and so answers with the default action; with
/// `default-action: kill` (or kill-thread, trap) that answer is stricter than errno and the
/// kernel applies it: the first thread a program starts kills it instead of falling back.
#[rstest]
#[case::kill("{default-action: kill}")]
#[case::kill_thread("{default-action: kill-thread}")]
#[case::trap("{default-action: trap}")]
fn clone3_fails_with_enosys_whatever_the_default_action(#[case] yaml: &str) {
    expect(&compile_yaml(yaml), x("clone3", &[]), ENOSYS);
}

// ── the compiled programs, pinned ────────────────────────────────────────────────────────────

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
