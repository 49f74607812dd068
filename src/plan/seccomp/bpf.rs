//! seccomp code generation: allowed and denied syscalls → the stack of classic BPF programs
//! the child installs, last of its steps (after PR_SET_NO_NEW_PRIVS, just before execve).
//!
//! Each program starts by checking the architecture the kernel reports for the call, then
//! finds the syscall number by a binary search over runs of numbers with the same answer;
//! syscalls with argument conditions jump to a block that seccompiler generates for them
//! (seccompiler writes the argument comparisons; the search tree is ours because seccompiler's
//! flat list of numbers is several times longer, which the kernel pays for at install time: see
//! `program`). The stack starts with a guard against the other ABIs the CPU offers the same
//! process.
//!
//! Architecture: the filters are built for x86_64 only. What is specific to it — the audit
//! architecture in `seccomp_data.arch`, seccompiler's target, the x32 ABI bit the guard refuses
//! and, in `plan/names.rs`, the syscall table the rules were resolved with — is behind
//! `#[cfg(target_arch = "x86_64")]` (`NATIVE`). Built for another architecture, kekkai
//! refuses at plan time every policy that needs a filter, naming what is missing, rather than
//! install a filter that would check the wrong numbers.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

use super::{Action, Filter, MAX_INSTRUCTIONS, Match, Op, Preset, SeccompPlan};

/// What the programs are built for: the machine kekkai was compiled for.
#[derive(Debug, Clone, Copy)]
struct Native {
    /// `seccomp_data.arch` for the native ABI (an AUDIT_ARCH_* value).
    audit_arch: u32,
    /// seccompiler's name for the architecture.
    target: TargetArch,
    /// Native syscall numbers are below this; at and above it the numbers belong to another
    /// ABI with the same audit architecture (x86_64's x32 marks its numbers with bit 30).
    abi_bit: u32,
}

/// x86_64: AUDIT_ARCH_X86_64; the x32 ABI shares it and sets `__X32_SYSCALL_BIT`.
#[cfg(target_arch = "x86_64")]
const NATIVE: Option<Native> = Some(Native {
    audit_arch: 0xC000_003E,
    target: TargetArch::x86_64,
    abi_bit: 0x4000_0000,
});

/// Any other architecture: none (see [`unsupported`]).
#[cfg(not(target_arch = "x86_64"))]
const NATIVE: Option<Native> = None;

/// The architecture the programs are built for, or the refusal.
fn native() -> Result<Native, String> {
    NATIVE.ok_or_else(|| unsupported(std::env::consts::ARCH))
}

/// The refusal on an architecture the filters aren't built for.
fn unsupported(arch: &str) -> String {
    format!(
        "this kekkai was built for {arch}, and its seccomp filters are built for x86_64 only: \
         {arch} has no syscall table (plan/names.rs), audit architecture, seccompiler target or \
         ABI guard (plan/seccomp/bpf.rs) here; a policy with `seccomp: {{preset: none}}` and \
         `host-privileges: allow` needs no filter"
    )
}

/// The kernel's answer for an action.
fn ret(action: Action) -> SeccompAction {
    match action {
        Action::KillProcess => SeccompAction::KillProcess,
        Action::KillThread => SeccompAction::KillThread,
        Action::Trap => SeccompAction::Trap,
        Action::Errno(n) => SeccompAction::Errno(n),
        Action::Log => SeccompAction::Log,
        Action::Allow => SeccompAction::Allow,
    }
}

fn to_rules(m: &Match) -> Result<Vec<SeccompRule>, String> {
    match m {
        Match::Always => Ok(Vec::new()),
        Match::When(sets) => sets
            .iter()
            .map(|conds| {
                let cs = conds
                    .iter()
                    .map(|c| {
                        let op = match c.op {
                            Op::Eq => SeccompCmpOp::Eq,
                            Op::Ne => SeccompCmpOp::Ne,
                            Op::Lt => SeccompCmpOp::Lt,
                            Op::Le => SeccompCmpOp::Le,
                            Op::Gt => SeccompCmpOp::Gt,
                            Op::Ge => SeccompCmpOp::Ge,
                            Op::MaskedEq(mask) => SeccompCmpOp::MaskedEq(mask),
                        };
                        let len = if c.width32 {
                            SeccompCmpArgLen::Dword
                        } else {
                            SeccompCmpArgLen::Qword
                        };
                        SeccompCondition::new(c.arg, len, op, c.value).map_err(|e| e.to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                SeccompRule::new(cs).map_err(|e| e.to_string())
            })
            .collect(),
    }
}

/// One filter's program. Syscalls allowed (or denied) whatever their arguments are found by
/// a binary search over runs of consecutive numbers, which keeps the program short: the kernel
/// checks every syscall number against the whole program when it builds its action cache at
/// install time, and JIT-compiles it, so a 1500-instruction list costs half a millisecond per
/// launch where ~150 instructions cost a tenth of that. Syscalls with argument conditions
/// jump to a block that seccompiler generates for them alone.
fn program(
    arch: Native,
    rules: &BTreeMap<i64, Match>,
    mismatch: Action,
    matched: Action,
) -> Result<Vec<sock_filter>, ProgramError> {
    let conditional: BTreeMap<i64, Match> = rules
        .iter()
        .filter(|(_, m)| **m != Match::Always)
        .map(|(nr, m)| (*nr, m.clone()))
        .collect();
    let mut leaves: Vec<(u32, Leaf)> = Vec::new();
    let mut next: u32 = 0;
    for (nr, m) in rules {
        let nr = u32::try_from(*nr).map_err(|_| format!("syscall number {nr} out of range"))?;
        if nr > next {
            push_leaf(&mut leaves, next, Leaf::Mismatch);
        }
        let leaf = if *m == Match::Always {
            Leaf::Matched
        } else {
            Leaf::Conditional
        };
        push_leaf(&mut leaves, nr, leaf);
        next = nr.saturating_add(1);
    }
    push_leaf(&mut leaves, next, Leaf::Mismatch);

    let on_match = u32::from(ret(matched));
    let on_mismatch = u32::from(ret(mismatch));
    let (tree, jumps) = search_tree(&leaves, on_match, on_mismatch);
    let mut prog = vec![
        bpf(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH),
        bpf(BPF_JEQ_K, 1, 0, arch.audit_arch),
        bpf(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        bpf(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR),
    ];
    let base = prog.len();
    prog.extend(tree);
    if !conditional.is_empty() {
        let block = seccompiler_program(arch, &conditional, mismatch, matched)?;
        let start = prog.len();
        for j in jumps {
            let at = base + j;
            let offset = u32::try_from(start - at - 1).map_err(|e| e.to_string())?;
            if let Some(ins) = prog.get_mut(at) {
                ins.k = offset;
            }
        }
        prog.extend(block);
    }
    // A handful of rules: seccompiler's flat list can be the shorter one.
    if rules.len() <= 32 {
        let flat = seccompiler_program(arch, rules, mismatch, matched)?;
        if flat.len() < prog.len() {
            return Ok(flat);
        }
    }
    Ok(prog)
}

/// What a run of syscall numbers gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    Matched,
    Mismatch,
    /// Decided by the arguments, in the seccompiler block.
    Conditional,
}

/// Starts a run at `start` unless the previous run has the same leaf.
fn push_leaf(leaves: &mut Vec<(u32, Leaf)>, start: u32, leaf: Leaf) {
    match leaves.last_mut() {
        Some((_, last)) if *last == leaf => {}
        Some((s, last)) if *s == start => *last = leaf,
        _ => leaves.push((start, leaf)),
    }
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_JA: u16 = 0x05;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;

fn bpf(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// A binary search over runs (the accumulator holds the syscall number). Returns the code and
/// the positions of the jumps to the conditional block, whose offsets the caller fills in.
/// BPF jumps only forward: each node tests `nr >= first of the right half` and falls through
/// to the left half; a right half more than 255 instructions away is reached through `JA`.
fn search_tree(
    leaves: &[(u32, Leaf)],
    on_match: u32,
    on_mismatch: u32,
) -> (Vec<sock_filter>, Vec<usize>) {
    match leaves {
        [] => (vec![bpf(BPF_RET_K, 0, 0, on_mismatch)], Vec::new()),
        [(_, leaf)] => match leaf {
            Leaf::Matched => (vec![bpf(BPF_RET_K, 0, 0, on_match)], Vec::new()),
            Leaf::Mismatch => (vec![bpf(BPF_RET_K, 0, 0, on_mismatch)], Vec::new()),
            Leaf::Conditional => (vec![bpf(BPF_JA, 0, 0, 0)], vec![0]),
        },
        _ => {
            let mid = leaves.len() / 2;
            let pivot = leaves.get(mid).map_or(0, |(start, _)| *start);
            let (left, left_jumps) =
                search_tree(leaves.get(..mid).unwrap_or_default(), on_match, on_mismatch);
            let (right, right_jumps) =
                search_tree(leaves.get(mid..).unwrap_or_default(), on_match, on_mismatch);
            let mut code = Vec::with_capacity(left.len() + right.len() + 2);
            match u8::try_from(left.len()) {
                Ok(skip) => code.push(bpf(BPF_JGE_K, skip, 0, pivot)),
                Err(_) => {
                    code.push(bpf(BPF_JGE_K, 0, 1, pivot));
                    code.push(bpf(
                        BPF_JA,
                        0,
                        0,
                        u32::try_from(left.len()).unwrap_or(u32::MAX),
                    ));
                }
            }
            let left_at = code.len();
            code.extend(left);
            let right_at = code.len();
            code.extend(right);
            let jumps = left_jumps
                .into_iter()
                .map(|j| j + left_at)
                .chain(right_jumps.into_iter().map(|j| j + right_at))
                .collect();
            (code, jumps)
        }
    }
}

/// seccompiler's program for rules with argument conditions.
fn seccompiler_program(
    arch: Native,
    rules: &BTreeMap<i64, Match>,
    mismatch: Action,
    matched: Action,
) -> Result<Vec<sock_filter>, ProgramError> {
    let mut map = BTreeMap::new();
    for (nr, m) in rules {
        map.insert(*nr, to_rules(m)?);
    }
    let filter = SeccompFilter::new(map, ret(mismatch), ret(matched), arch.target)
        .map_err(|e| e.to_string())?;
    let prog: BpfProgram = filter.try_into().map_err(|e| match e {
        // The caller names the filter; here only the size is known.
        seccompiler::BackendError::FilterTooLarge(len) => ProgramError::TooLarge(len),
        other => ProgramError::Other(other.to_string()),
    })?;
    Ok(prog)
}

/// Why a program could not be generated.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ProgramError {
    /// It would have this many instructions, more than the kernel takes (the caller, which
    /// knows the filter's name, says so).
    TooLarge(usize),
    /// Anything else, as the generator or seccompiler words it.
    Other(String),
}

impl From<String> for ProgramError {
    fn from(e: String) -> Self {
        ProgramError::Other(e)
    }
}

/// The stack of programs for `plan`, in installation order: the architecture guard, the
/// allowlist (unless the preset is `none`), one filter per deny action. No filter at all for
/// `preset: none` without deny rules.
pub(super) fn build_filters(plan: &SeccompPlan) -> Result<Vec<Filter>, String> {
    let too_large = |name: &str, len: usize| {
        format!(
            "the filter \"{name}\" has {len} BPF instructions; the kernel's limit is \
             {MAX_INSTRUCTIONS}: use fewer argument rules"
        )
    };
    let build = |arch, name: &str, rules, mismatch, matched| {
        program(arch, rules, mismatch, matched).map_err(|e| match e {
            ProgramError::TooLarge(len) => too_large(name, len),
            ProgramError::Other(e) => e,
        })
    };
    let mut filters = Vec::new();
    if plan.preset == Preset::None && plan.denied.is_empty() {
        return Ok(filters);
    }
    let arch = native()?;
    filters.push(Filter {
        name: "architecture guard: i386 and x32 calls kill the process".into(),
        program: arch_guard(arch),
    });
    if plan.preset != Preset::None {
        let name = format!(
            "allowlist ({} syscalls); anything else: {}",
            plan.allowed.len(),
            plan.default_action
        );
        let program = build(
            arch,
            &name,
            &plan.allowed,
            plan.default_action,
            Action::Allow,
        )?;
        filters.push(Filter { name, program });
    }
    for (action, rules) in &plan.denied {
        let name = format!("deny → {action} ({} syscalls)", rules.len());
        let program = build(arch, &name, rules, Action::Allow, *action)?;
        filters.push(Filter { name, program });
    }
    for f in &filters {
        if f.program.len() > MAX_INSTRUCTIONS {
            return Err(too_large(&f.name, f.program.len()));
        }
    }
    Ok(filters)
}

/// The x32 ABI shares x86_64's audit architecture and marks its syscall numbers with bit 30;
/// seccompiler checks only the architecture, so this filter rejects the bit (and, like every
/// seccompiler filter, kills on a foreign architecture such as i386's `int 0x80`).
fn arch_guard(arch: Native) -> Vec<sock_filter> {
    vec![
        bpf(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH),
        bpf(BPF_JEQ_K, 1, 0, arch.audit_arch),
        bpf(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        bpf(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR),
        bpf(BPF_JGE_K, 0, 1, arch.abi_bit),
        bpf(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        bpf(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

#[cfg(test)]
#[cfg(target_arch = "x86_64")]
mod tests {
    use super::super::interp::{self, SeccompData};
    use super::super::tests::compile_yaml;
    use super::*;
    use rstest::rstest;

    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;

    /// The program's answer for an x86_64 call (nr, args), checked and run by the interpreter.
    fn run_bpf(prog: &[sock_filter], nr: u32, args: [u64; 6]) -> u32 {
        let data = SeccompData {
            nr: i32::from_ne_bytes(nr.to_ne_bytes()),
            arch: AUDIT_ARCH_X86_64,
            instruction_pointer: 0,
            args,
        };
        interp::run(prog, &data.bytes()).unwrap_or_else(|e| panic!("nr {nr}: {e}"))
    }

    /// The compact program answers exactly what seccompiler's program for the same rules
    /// answers, for every syscall number and a spread of arguments.
    #[rstest]
    #[case::default("{}")]
    #[case::strict("{preset: strict}")]
    #[case::families("{socket-families: [unix]}")]
    #[case::rules(
        "{allow: [{syscall: personality, args: [{arg: 0, width: 32, eq: 0}]}, {syscall: prctl, args: [{arg: 0, width: 64, le: 4}]}], deny: [{syscall: kill, args: [{arg: 1, width: 32, eq: 9}], action: kill}, ptrace]}"
    )]
    #[case::none_denylist(
        "{preset: none, deny: [ptrace, {syscall: ioctl, args: [{arg: 1, width: 32, eq: 0x5412}]}]}"
    )]
    fn compact_programs_match_seccompiler(#[case] yaml: &str) {
        let plan = compile_yaml(yaml).unwrap();
        let arch = native().unwrap();
        let mut stacks: Vec<(&BTreeMap<i64, Match>, Action, Action)> = Vec::new();
        if plan.preset != Preset::None {
            stacks.push((&plan.allowed, plan.default_action, Action::Allow));
        }
        for (action, rules) in &plan.denied {
            stacks.push((rules, Action::Allow, *action));
        }
        assert!(!stacks.is_empty());
        let argsets: [[u64; 6]; 6] = [
            [0; 6],
            [1, 9, 0x5412, 0, 0, 0],
            [4, 0x5412, 2, 3, 4, 5],
            [5, 0x541C, 0, 0, 0, 0],
            [u64::MAX, 1 << 33, 10, 0x7e020000, 0, 0],
            [0x1_0000_0000, 0x2000_0000, 1, 1, 1, 1],
        ];
        for (rules, mismatch, matched) in stacks {
            let ours = program(arch, rules, mismatch, matched).unwrap();
            let theirs = seccompiler_program(arch, rules, mismatch, matched).unwrap();
            assert!(
                ours.len() <= theirs.len(),
                "{} > {}",
                ours.len(),
                theirs.len()
            );
            if rules.len() > 100 {
                assert!(
                    ours.len() * 4 < theirs.len(),
                    "{} vs {}",
                    ours.len(),
                    theirs.len()
                );
            }
            for nr in (0..600).chain([0x4000_0000, 0x4000_0001, u32::MAX]) {
                for args in argsets {
                    assert_eq!(
                        run_bpf(&ours, nr, args),
                        run_bpf(&theirs, nr, args),
                        "nr {nr} args {args:x?}"
                    );
                }
            }
        }
    }

    /// Runs far apart: the right half of a node more than 255 instructions away.
    #[test]
    fn long_jumps_are_reached_through_ja() {
        let mut rules = BTreeMap::new();
        for nr in (0..1200).step_by(2) {
            rules.insert(nr, Match::Always);
        }
        let prog = program(native().unwrap(), &rules, Action::Errno(1), Action::Allow).unwrap();
        assert!(prog.iter().any(|i| i.code == BPF_JA));
        let allow = libc::SECCOMP_RET_ALLOW;
        for nr in 0..1300u32 {
            let want = if nr < 1200 && nr % 2 == 0 {
                allow
            } else {
                libc::SECCOMP_RET_ERRNO | 1
            };
            assert_eq!(run_bpf(&prog, nr, [0; 6]), want, "nr {nr}");
        }
    }

    /// Every syscall the default preset allows without conditions is allowed by every filter
    /// in a way the kernel can cache, so a busy `read`/`write` loop never runs the BPF.
    #[rstest]
    #[case::default("{}")]
    #[case::strict("{preset: strict}")]
    fn unconditional_allows_hit_the_kernels_action_cache(#[case] yaml: &str) {
        let plan = compile_yaml(yaml).unwrap();
        let mut checked = 0;
        for (nr, m) in &plan.allowed {
            // Denied later in the stack (clone3 → ENOSYS) is not an allow.
            if *m != Match::Always || plan.denied.values().any(|d| d.contains_key(nr)) {
                continue;
            }
            let nr = u32::try_from(*nr).unwrap();
            for f in &plan.filters {
                assert_eq!(
                    interp::cached(&f.program, AUDIT_ARCH_X86_64, nr),
                    Ok(libc::SECCOMP_RET_ALLOW),
                    "syscall {nr} in filter {}",
                    f.name
                );
            }
            checked += 1;
        }
        assert!(checked > 50, "only {checked} unconditional syscalls");
    }

    /// Built for another architecture, a filter is refused with what is missing.
    #[test]
    fn another_architecture_is_refused_by_name() {
        let e = unsupported("aarch64");
        assert!(e.contains("built for aarch64"), "{e}");
        assert!(e.contains("x86_64 only"), "{e}");
        assert!(e.contains("syscall table"), "{e}");
        assert!(e.contains("audit architecture"), "{e}");
    }
}
