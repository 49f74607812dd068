//! seccomp code generation: allowed and denied syscalls → the one classic BPF program the
//! child installs, last of its steps (after PR_SET_NO_NEW_PRIVS, just before execve).
//!
//! The program checks the architecture the kernel reports for the call, then finds the syscall
//! number by a binary search over runs of numbers with the same answer (numbers with the x32
//! bit kill the process); a syscall whose answer depends on its arguments jumps to its own
//! block, which tries the answers of the rule stack strictest first, each an argument check
//! seccompiler writes (the search tree is ours because seccompiler's flat list of numbers is
//! several times longer, which the kernel pays for at install time: see `program`).
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

/// How a syscall number's answer is decided, in the order the kernel would rank the answers
/// of the stack this program replaces: the strictest action first, and among errnos the most
/// recently installed filter's first (the allowlist's default action was installed before
/// every deny filter). The first step whose conditions hold answers; when none does, the call
/// is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum When<'a> {
    /// Whatever the arguments.
    Always,
    /// When one of these condition sets holds.
    Holds(&'a [Vec<super::Cond>]),
    /// When none of them holds (the allowlist's default action for a conditional allow).
    Fails(&'a [Vec<super::Cond>]),
}

/// The precedence class of an action, as the kernel ranks them (lower wins).
fn class(action: Action) -> u8 {
    match action {
        Action::KillProcess => 0,
        Action::KillThread => 1,
        Action::Trap => 2,
        Action::Errno(_) => 3,
        Action::Log => 4,
        Action::Allow => 5,
    }
}

/// The steps that decide syscall `nr`, strictest first, cut after the first unconditional
/// one; empty when the call is allowed whatever its arguments.
fn steps<'a>(plan: &'a SeccompPlan, nr: i64) -> Vec<(Action, When<'a>)> {
    // (class, installed later first, action, when)
    let mut all: Vec<(u8, usize, Action, When<'a>)> = Vec::new();
    let installed = plan.denied.len() + 1;
    if plan.preset != Preset::None {
        let when = match plan.allowed.get(&nr) {
            None => Some(When::Always),
            Some(Match::Always) => None,
            Some(Match::When(sets)) => Some(When::Fails(sets)),
        };
        if let Some(when) = when {
            all.push((
                class(plan.default_action),
                installed,
                plan.default_action,
                when,
            ));
        }
    }
    for (i, (action, rules)) in plan.denied.iter().enumerate() {
        let when = match rules.get(&nr) {
            None => continue,
            Some(Match::Always) => When::Always,
            Some(Match::When(sets)) => When::Holds(sets),
        };
        all.push((class(*action), installed - 1 - i, *action, when));
    }
    all.retain(|(_, _, action, _)| *action != Action::Allow);
    all.sort_by_key(|(class, later, _, _)| (*class, *later));
    let mut out = Vec::new();
    for (_, _, action, when) in all {
        let last = when == When::Always;
        out.push((action, when));
        if last {
            break;
        }
    }
    out
}

/// What a run of syscall numbers gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    /// This answer, whatever the arguments.
    Ret(u32),
    /// Decided by the arguments, in this number's block (its index among the blocks).
    Block(usize),
}

/// The one program of a plan: the native architecture check, a binary search over runs of
/// consecutive syscall numbers with the same answer, and after it one block per syscall whose
/// answer depends on its arguments. Numbers at and above the other ABI's bit (x32) kill the
/// process, as any other architecture does.
///
/// It answers exactly what the stack it replaces would — the architecture guard, the allowlist
/// and one filter per deny action, with the kernel's rule that the strictest answer wins and
/// among equal ones the most recently installed filter's — and the unit tests below run both
/// through a BPF interpreter to prove it. One program instead of four: the kernel JIT-compiles
/// and builds the action cache of each filter at install time, and runs every filter on each
/// call the cache can't answer.
fn program(arch: Native, plan: &SeccompPlan) -> Result<Vec<sock_filter>, ProgramError> {
    let allow = u32::from(ret(Action::Allow));
    let mut numbers: Vec<i64> = plan.allowed.keys().copied().collect();
    numbers.extend(plan.denied.values().flat_map(|r| r.keys().copied()));
    numbers.sort_unstable();
    numbers.dedup();
    // What an unlisted number gets.
    let unlisted = match steps(plan, -1).first() {
        Some((action, _)) => u32::from(ret(*action)),
        None => allow,
    };
    let mut leaves: Vec<(u32, Leaf)> = Vec::new();
    let mut blocks: Vec<Vec<sock_filter>> = Vec::new();
    let mut next: u32 = 0;
    for nr in numbers {
        let at = u32::try_from(nr).map_err(|_| format!("syscall number {nr} out of range"))?;
        if at >= arch.abi_bit {
            return Err(format!("syscall number {nr} out of range").into());
        }
        if at > next {
            push_leaf(&mut leaves, next, Leaf::Ret(unlisted));
        }
        let steps = steps(plan, nr);
        let leaf = match steps.first() {
            None => Leaf::Ret(allow),
            Some((action, When::Always)) => Leaf::Ret(u32::from(ret(*action))),
            Some(_) => {
                blocks.push(block(arch, nr, &steps)?);
                Leaf::Block(blocks.len() - 1)
            }
        };
        push_leaf(&mut leaves, at, leaf);
        next = at.saturating_add(1);
    }
    push_leaf(&mut leaves, next, Leaf::Ret(unlisted));
    push_leaf(
        &mut leaves,
        arch.abi_bit,
        Leaf::Ret(libc::SECCOMP_RET_KILL_PROCESS),
    );

    let (tree, jumps) = search_tree(&leaves);
    let mut prog = vec![
        bpf(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH),
        bpf(BPF_JEQ_K, 1, 0, arch.audit_arch),
        bpf(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        bpf(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR),
    ];
    let base = prog.len();
    prog.extend(tree);
    let mut starts = Vec::with_capacity(blocks.len());
    for b in blocks {
        starts.push(prog.len());
        prog.extend(b);
    }
    for (at, index) in jumps {
        let at = base + at;
        let start = starts.get(index).copied().unwrap_or(at + 1);
        let offset = u32::try_from(start - at - 1).map_err(|e| e.to_string())?;
        if let Some(ins) = prog.get_mut(at) {
            ins.k = offset;
        }
    }
    if prog.len() > MAX_INSTRUCTIONS {
        return Err(ProgramError::TooLarge(prog.len()));
    }
    Ok(prog)
}

/// A return value no step answers with (kekkai never traces): a step's "not decided here",
/// rewritten into a jump to the next step.
const NEXT: u32 = libc::SECCOMP_RET_TRACE | 0x0e57;

/// One syscall's block: its steps in order, each a program seccompiler generates for this
/// number alone that answers the step's action or [`NEXT`], which becomes a jump to the next
/// step; past the last step the call is allowed. Each step reloads the syscall number (the one
/// before it may have left an argument in the accumulator); the architecture check every
/// seccompiler program starts with is dropped, the search already made it.
fn block(
    arch: Native,
    nr: i64,
    steps: &[(Action, When<'_>)],
) -> Result<Vec<sock_filter>, ProgramError> {
    let mut out = Vec::new();
    for (action, when) in steps {
        let (sets, matched, mismatch) = match when {
            When::Always => {
                out.push(bpf(BPF_RET_K, 0, 0, u32::from(ret(*action))));
                return Ok(out);
            }
            When::Holds(sets) => (sets, ret(*action), SeccompAction::Trace(NEXT & 0xffff)),
            When::Fails(sets) => (sets, SeccompAction::Trace(NEXT & 0xffff), ret(*action)),
        };
        let rules = BTreeMap::from([(nr, Match::When(sets.to_vec()))]);
        let mut step = seccompiler_with(arch, &rules, mismatch, matched)?;
        let guard = arch_check(arch);
        if step.get(..guard.len()) != Some(&guard[..]) {
            return Err(ProgramError::Other(
                "seccompiler's program doesn't start with its architecture check".into(),
            ));
        }
        step.drain(..guard.len());
        // [LD nr, JEQ nr (else past the first rule's way in), the rules, RET mismatch, RET
        // mismatch]: the search already matched the number, so the comparison goes (no jump
        // crosses it: it is the first); the first step finds the number still in the
        // accumulator.
        let number = u32::try_from(nr).map_err(|e| e.to_string())?;
        match step.get(..2) {
            Some([load, cmp])
                if *load == bpf(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR)
                    && *cmp == bpf(BPF_JEQ_K, 0, 1, number) =>
            {
                step.remove(1);
                if out.is_empty() {
                    step.remove(0);
                }
            }
            _ => {
                return Err(ProgramError::Other(
                    "seccompiler's program for one syscall has an unexpected shape".into(),
                ));
            }
        }
        let len = step.len();
        for (i, ins) in step.iter_mut().enumerate() {
            if ins.code == BPF_RET_K && ins.k == NEXT {
                *ins = bpf(
                    BPF_JA,
                    0,
                    0,
                    u32::try_from(len - i - 1).map_err(|e| e.to_string())?,
                );
            }
        }
        out.extend(step);
    }
    out.push(bpf(BPF_RET_K, 0, 0, u32::from(ret(Action::Allow))));
    Ok(out)
}

/// The architecture check seccompiler starts its programs with (and so does ours).
fn arch_check(arch: Native) -> [sock_filter; 3] {
    [
        bpf(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH),
        bpf(BPF_JEQ_K, 1, 0, arch.audit_arch),
        bpf(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
    ]
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
/// the positions of the jumps to the blocks (with the block's index), whose offsets the caller
/// fills in. BPF jumps only forward: each node tests `nr >= first of the right half` and falls
/// through to the left half; a right half more than 255 instructions away is reached through
/// `JA`.
fn search_tree(leaves: &[(u32, Leaf)]) -> (Vec<sock_filter>, Vec<(usize, usize)>) {
    match leaves {
        [] => (
            vec![bpf(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS)],
            Vec::new(),
        ),
        [(_, Leaf::Ret(k))] => (vec![bpf(BPF_RET_K, 0, 0, *k)], Vec::new()),
        [(_, Leaf::Block(i))] => (vec![bpf(BPF_JA, 0, 0, 0)], vec![(0, *i)]),
        _ => {
            let mid = leaves.len() / 2;
            let pivot = leaves.get(mid).map_or(0, |(start, _)| *start);
            let (left, left_jumps) = search_tree(leaves.get(..mid).unwrap_or_default());
            let (right, right_jumps) = search_tree(leaves.get(mid..).unwrap_or_default());
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
                .map(|(j, i)| (j + left_at, i))
                .chain(right_jumps.into_iter().map(|(j, i)| (j + right_at, i)))
                .collect();
            (code, jumps)
        }
    }
}

/// seccompiler's program for rules with argument conditions: `matched` when the number is
/// listed and one of its condition sets holds, `mismatch` otherwise.
fn seccompiler_with(
    arch: Native,
    rules: &BTreeMap<i64, Match>,
    mismatch: SeccompAction,
    matched: SeccompAction,
) -> Result<Vec<sock_filter>, ProgramError> {
    let mut map = BTreeMap::new();
    for (nr, m) in rules {
        map.insert(*nr, to_rules(m)?);
    }
    let filter =
        SeccompFilter::new(map, mismatch, matched, arch.target).map_err(|e| e.to_string())?;
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

/// The program for `plan`: one filter that answers what the architecture guard, the allowlist
/// (unless the preset is `none`) and one filter per deny action would answer together (see
/// [`program`]). No filter at all for `preset: none` without deny rules.
pub(super) fn build_filters(plan: &SeccompPlan) -> Result<Vec<Filter>, String> {
    if plan.preset == Preset::None && plan.denied.is_empty() {
        return Ok(Vec::new());
    }
    let arch = native()?;
    let mut parts = Vec::new();
    if plan.preset != Preset::None {
        parts.push(format!(
            "allowlist ({} syscalls, anything else: {})",
            plan.allowed.len(),
            plan.default_action
        ));
    }
    for (action, rules) in &plan.denied {
        parts.push(format!("deny → {action} ({} syscalls)", rules.len()));
    }
    parts.push("i386 and x32 calls kill the process".into());
    let name = parts.join("; ");
    let program = program(arch, plan).map_err(|e| match e {
        ProgramError::TooLarge(len) => format!(
            "the filter \"{name}\" has {len} BPF instructions; the kernel's limit is \
             {MAX_INSTRUCTIONS}: use fewer argument rules"
        ),
        ProgramError::Other(e) => e,
    })?;
    Ok(vec![Filter { name, program }])
}

#[cfg(test)]
#[cfg(target_arch = "x86_64")]
mod tests {
    use super::super::interp::{self, SeccompData};
    use super::super::tests::{compile_yaml, compile_yaml_with};
    use super::super::{Filter, HostPrivileges};
    use super::*;
    use rstest::rstest;

    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;

    fn data(arch: u32, nr: u32, args: [u64; 6]) -> [u8; 64] {
        SeccompData {
            nr: i32::from_ne_bytes(nr.to_ne_bytes()),
            arch,
            instruction_pointer: 0,
            args,
        }
        .bytes()
    }

    /// The program's answer for a call, checked and run by the interpreter.
    fn run_bpf(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        interp::run(prog, &data(arch, nr, args)).unwrap_or_else(|e| panic!("nr {nr}: {e}"))
    }

    /// The stack kekkai installed before the filters were merged, from seccompiler's own flat
    /// programs: the architecture guard, the allowlist, one filter per deny action.
    fn reference_stack(plan: &SeccompPlan) -> Vec<Filter> {
        let arch = native().unwrap();
        let flat = |rules, mismatch, matched| {
            let program = seccompiler_with(arch, rules, ret(mismatch), ret(matched)).unwrap();
            Filter {
                name: String::new(),
                program,
            }
        };
        let guard = Filter {
            name: "guard".into(),
            program: vec![
                bpf(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH),
                bpf(BPF_JEQ_K, 1, 0, arch.audit_arch),
                bpf(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
                bpf(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR),
                bpf(BPF_JGE_K, 0, 1, arch.abi_bit),
                bpf(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
                bpf(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
            ],
        };
        let mut stack = vec![guard];
        if plan.preset != Preset::None {
            stack.push(flat(&plan.allowed, plan.default_action, Action::Allow));
        }
        for (action, rules) in &plan.denied {
            stack.push(flat(rules, Action::Allow, *action));
        }
        stack
    }

    /// Arguments that cross every condition the presets and the tables below use: zeros, all
    /// ones, the mode bits (setuid, setgid, character and block devices) and the creating open
    /// flags (O_CREAT, O_TMPFILE) in every position, ioctl requests, clone flags.
    fn argsets() -> Vec<[u64; 6]> {
        let mut v: Vec<[u64; 6]> = vec![
            [0; 6],
            [u64::MAX; 6],
            [1, 9, 0x5412, 0, 0, 0],
            [4, 0x5412, 2, 3, 4, 5],
            [5, 0x541C, 0, 0, 0, 0],
            [u64::MAX, 1 << 33, 10, 0x7e020000, 0, 0],
            [0x1_0000_0000, 0x2000_0000, 1, 1, 1, 1],
        ];
        for value in [
            0o4755u64,
            0o2755,
            0o6755,
            0o755,
            0o20644,
            0o60644,
            0o10644,
            0o100644,
            0o100,
            0o20_000_000,
            0o20_000_100,
            0o1,
            0x1_0000_4000,
        ] {
            for at in 0..6 {
                let mut a = [0u64; 6];
                a[at] = value;
                v.push(a);
                let mut b = [0o100u64; 6];
                b[at] = value;
                v.push(b);
                let mut c = [0o20_000_000u64; 6];
                c[at] = value;
                v.push(c);
            }
        }
        v
    }

    /// The one program answers exactly what the stack it replaces answers (seccompiler's flat
    /// programs with the kernel's rule for a stack), for every syscall number, the other ABIs
    /// and a spread of arguments.
    #[rstest]
    #[case::default("{}", HostPrivileges::Deny)]
    #[case::default_open("{}", HostPrivileges::Allow)]
    #[case::strict("{preset: strict}", HostPrivileges::Deny)]
    #[case::log("{preset: log}", HostPrivileges::Deny)]
    #[case::none("{preset: none}", HostPrivileges::Deny)]
    #[case::kill("{default-action: kill}", HostPrivileges::Deny)]
    #[case::trap("{default-action: trap}", HostPrivileges::Deny)]
    #[case::families("{socket-families: [unix]}", HostPrivileges::Deny)]
    #[case::rules(
        "{allow: [{syscall: personality, args: [{arg: 0, width: 32, eq: 0}]}, {syscall: prctl, args: [{arg: 0, width: 64, le: 4}]}], deny: [{syscall: kill, args: [{arg: 1, width: 32, eq: 9}], action: kill}, ptrace]}",
        HostPrivileges::Deny
    )]
    #[case::errnos(
        "{deny: [{syscall: chmod, args: [{arg: 1, width: 32, eq: 0o4755}], action: errno(EACCES)}, {syscall: fchmod, action: errno(EROFS)}, {syscall: mknod, args: [{arg: 1, width: 32, eq: 0o20644}], action: trap}, {syscall: openat, args: [{arg: 2, width: 32, eq: 0o100}], action: kill-thread}]}",
        HostPrivileges::Deny
    )]
    #[case::allowed_conditions_and_denials(
        "{allow: [{syscall: fchmodat, args: [{arg: 2, width: 32, eq: 0o4755}]}], deny: [{syscall: socket, args: [{arg: 0, width: 32, eq: 1}], action: errno(EACCES)}]}",
        HostPrivileges::Deny
    )]
    #[case::none_denylist(
        "{preset: none, deny: [ptrace, {syscall: ioctl, args: [{arg: 1, width: 32, eq: 0x5412}]}]}",
        HostPrivileges::Deny
    )]
    #[case::none_denylist_open(
        "{preset: none, deny: [ptrace, {syscall: chmod, action: errno(ENOSYS)}]}",
        HostPrivileges::Allow
    )]
    fn the_program_answers_what_the_stack_answered(
        #[case] yaml: &str,
        #[case] host: HostPrivileges,
    ) {
        let plan = compile_yaml_with(yaml, host).unwrap();
        assert_eq!(plan.filters.len(), 1, "{yaml}");
        let ours = &plan.filters[0].program;
        interp::check(ours).unwrap();
        let stack = reference_stack(&plan);
        let argsets = argsets();
        for arch in [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386] {
            for nr in (0..600).chain([0x4000_0000, 0x4000_0001, 0x4000_0002 + 59, u32::MAX]) {
                for args in &argsets {
                    let call = data(arch, nr, *args);
                    assert_eq!(
                        interp::run(ours, &call).unwrap(),
                        interp::exec_stack(&stack, &call).unwrap(),
                        "{yaml}: arch {arch:x} nr {nr} args {args:x?}"
                    );
                }
            }
        }
    }

    /// The default policy: one program, shorter than the stack it replaces and several times
    /// shorter than seccompiler's flat list of the allowlist alone.
    #[test]
    fn the_default_program_is_compact() {
        let plan = compile_yaml("{}").unwrap();
        let arch = native().unwrap();
        let flat = seccompiler_with(
            arch,
            &plan.allowed,
            ret(plan.default_action),
            ret(Action::Allow),
        )
        .unwrap();
        let ours = plan.filters[0].program.len();
        let stack: usize = reference_stack(&plan).iter().map(|f| f.program.len()).sum();
        assert!(ours * 3 < flat.len(), "{ours} vs {}", flat.len());
        assert!(ours < stack, "{ours} vs {stack}");
    }

    /// Runs far apart: the right half of a node more than 255 instructions away.
    #[test]
    fn long_jumps_are_reached_through_ja() {
        let mut plan = compile_yaml_with("{}", HostPrivileges::Allow).unwrap();
        plan.denied.clear();
        plan.allowed.clear();
        plan.default_action = Action::Errno(1);
        for nr in (0..1200).step_by(2) {
            plan.allowed.insert(nr, Match::Always);
        }
        let prog = program(native().unwrap(), &plan).unwrap();
        assert!(prog.iter().any(|i| i.code == BPF_JA));
        let allow = libc::SECCOMP_RET_ALLOW;
        for nr in 0..1300u32 {
            let want = if nr < 1200 && nr % 2 == 0 {
                allow
            } else {
                libc::SECCOMP_RET_ERRNO | 1
            };
            assert_eq!(
                run_bpf(&prog, AUDIT_ARCH_X86_64, nr, [0; 6]),
                want,
                "nr {nr}"
            );
        }
    }

    /// Every syscall the default preset allows without conditions is allowed in a way the
    /// kernel can cache, so a busy `read`/`write` loop never runs the BPF.
    #[rstest]
    #[case::default("{}")]
    #[case::strict("{preset: strict}")]
    fn unconditional_allows_hit_the_kernels_action_cache(#[case] yaml: &str) {
        let plan = compile_yaml(yaml).unwrap();
        let mut checked = 0;
        for (nr, m) in &plan.allowed {
            // Denied too (clone3 → ENOSYS, chmod's modes → EPERM) is not an outright allow.
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
