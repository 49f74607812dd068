//! A classic-BPF interpreter for seccomp programs, and the kernel's action-cache emulation.
//!
//! This is the one interpreter kekkai runs compiled filters with: the tests (the unit tests of
//! `bpf` and `tests/seccomp_bpf.rs`), and `kekkai audit`, which asks a policy's own filters
//! what they answer to a call its harness was allowed (`audit::harness`). The launch never runs
//! it. It follows the kernel (net/core/filter.c, kernel/seccomp.c):
//!
//! - [`check`] accepts what `seccomp_check_filter` accepts, and nothing this interpreter doesn't
//!   implement, so a malformed program can't pass as an answer;
//! - [`exec`] runs a program on a `struct seccomp_data` ([`SeccompData::bytes`]);
//! - [`exec_stack`] combines a stack of filters as the kernel does: every filter runs, the
//!   answer with the lowest action value wins, among equal ones the most recently installed;
//! - [`cached`] is the kernel's action-cache emulation (`seccomp_is_const_allow`): when a filter
//!   is installed, the kernel runs it for every syscall number knowing only the number and the
//!   architecture; a program that returns without looking at anything else is cached per number,
//!   and an allowed number then never runs the filter again.

use seccompiler::sock_filter;

use super::Filter;

/// BPF_MAXINSNS: the most instructions one program may have.
pub const MAX_INSNS: usize = 4096;
/// The kernel's limit on one call's path through a stack: the sum of (length + 4).
pub const MAX_INSNS_PER_PATH: usize = 32768;
/// Scratch memory words (BPF_MEMWORDS).
const MEMWORDS: usize = 16;

// The opcodes `seccomp_check_filter` accepts (BPF_LD|BPF_W|BPF_LEN aside).
const LD_W_ABS: u16 = 0x20;
const LD_IMM: u16 = 0x00;
const LD_MEM: u16 = 0x60;
const LDX_IMM: u16 = 0x01;
const LDX_MEM: u16 = 0x61;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU_NEG: u16 = 0x84;
const ALU_AND_K: u16 = 0x54;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
const RET_A: u16 = 0x16;
const TAX: u16 = 0x07;
const TXA: u16 = 0x87;
/// ADD SUB MUL DIV OR AND LSH RSH XOR (no MOD: seccomp refuses it).
const ALU_OPS: [u16; 9] = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0];
/// JEQ JGT JGE JSET.
const JMP_OPS: [u16; 4] = [0x10, 0x20, 0x30, 0x40];
const SRC_X: u16 = 0x08;
/// The instructions the action-cache emulation knows; anything else makes it give up.
const CACHE_OPS: [u16; 8] = [LD_W_ABS, RET_K, JA, JEQ_K, JGE_K, JGT_K, JSET_K, ALU_AND_K];

/// `struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeccompData {
    /// The syscall number.
    pub nr: i32,
    /// The audit architecture of the call (AUDIT_ARCH_*).
    pub arch: u32,
    /// Where the call was made.
    pub instruction_pointer: u64,
    /// The arguments.
    pub args: [u64; 6],
}

impl SeccompData {
    /// The bytes the kernel hands the filter, in the machine's byte order.
    pub fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        let fields = [
            (0, self.nr.to_ne_bytes().to_vec()),
            (4, self.arch.to_ne_bytes().to_vec()),
            (8, self.instruction_pointer.to_ne_bytes().to_vec()),
        ];
        let args = self
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| (16 + 8 * i, a.to_ne_bytes().to_vec()));
        for (at, field) in fields.into_iter().chain(args) {
            if let Some(slot) = b.get_mut(at..at + field.len()) {
                slot.copy_from_slice(&field);
            }
        }
        b
    }
}

/// Why a program was refused, or stopped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Empty, or longer than [`MAX_INSNS`].
    #[error("program length {0}")]
    Length(usize),
    /// An instruction the kernel refuses, or this interpreter doesn't implement.
    #[error(
        "instruction {pc} is invalid or unsupported: code {code:#x}, jt {jt}, jf {jf}, k {k:#x}"
    )]
    Invalid {
        /// Where.
        pc: usize,
        /// The opcode.
        code: u16,
        /// The jump if true.
        jt: u8,
        /// The jump if false.
        jf: u8,
        /// The constant.
        k: u32,
    },
    /// The last instruction is not a return.
    #[error("the last instruction is not a return")]
    NoReturnAtTheEnd,
    /// Ran past the last instruction.
    #[error("fell off the end at {0}")]
    FellOffTheEnd(usize),
    /// Read scratch memory nothing wrote.
    #[error("instruction {0} reads scratch memory nothing wrote")]
    UnwrittenScratch(usize),
    /// Shifted by 32 or more.
    #[error("instruction {0} shifts by 32 or more")]
    Shift(usize),
    /// Ran more instructions than a program may have.
    #[error("more than {MAX_INSNS} instructions executed")]
    TooLong,
    /// The action-cache emulation met an instruction it doesn't know, or a load of something
    /// other than the number and the architecture: the kernel doesn't cache this call.
    #[error("instruction {0} is beyond the action-cache emulation")]
    NotConstant(usize),
}

/// Class ALU, a known operation, K or X, nothing else set.
fn is_alu(code: u16) -> bool {
    code & !0xf8 == 0x04 && ALU_OPS.contains(&(code & 0xf0))
}

/// Class JMP, a conditional jump, K or X, nothing else set.
fn is_cond_jump(code: u16) -> bool {
    code & !0xf8 == 0x05 && JMP_OPS.contains(&(code & 0xf0))
}

/// Checks a program as the kernel's loader would, and stricter: refuses anything this
/// interpreter doesn't implement.
pub fn check(prog: &[sock_filter]) -> Result<(), Error> {
    let len = prog.len();
    if !(1..=MAX_INSNS).contains(&len) {
        return Err(Error::Length(len));
    }
    for (pc, ins) in prog.iter().enumerate() {
        let k = ins.k;
        let ok = match ins.code {
            LD_W_ABS => k % 4 == 0 && k < 64,
            LD_MEM | LDX_MEM | ST | STX => usize::try_from(k).is_ok_and(|k| k < MEMWORDS),
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
        if !ok {
            return Err(invalid(pc, ins));
        }
    }
    match prog.last().map(|i| i.code) {
        Some(RET_K | RET_A) => Ok(()),
        _ => Err(Error::NoReturnAtTheEnd),
    }
}

fn invalid(pc: usize, ins: &sock_filter) -> Error {
    Error::Invalid {
        pc,
        code: ins.code,
        jt: ins.jt,
        jf: ins.jf,
        k: ins.k,
    }
}

/// Checks a program, then runs it on `data`; returns what it returns.
pub fn run(prog: &[sock_filter], data: &[u8; 64]) -> Result<u32, Error> {
    check(prog)?;
    exec(prog, data)
}

/// Runs a program that passed [`check`] on `data`.
pub fn exec(prog: &[sock_filter], data: &[u8; 64]) -> Result<u32, Error> {
    interpret(prog, Input::Data(data))
}

/// The kernel's action-cache emulation for one syscall number of one architecture: what the
/// program returns when it decides on those alone; [`Error::NotConstant`] when it looks at
/// anything else (the kernel then runs the filter on every such call).
pub fn cached(prog: &[sock_filter], arch: u32, nr: u32) -> Result<u32, Error> {
    interpret(prog, Input::NrArch { nr, arch })
}

/// The action part of a return value, ordered as the kernel orders it (lowest wins).
pub fn action_of(ret: u32) -> i32 {
    i32::from_ne_bytes((ret & 0xffff_0000).to_ne_bytes())
}

/// The kernel's answer for a stack of filters (in installation order; each passed [`check`]):
/// every filter runs, the lowest action wins, among equal ones the most recently installed
/// filter's. No filter at all allows.
pub fn exec_stack(filters: &[Filter], data: &[u8; 64]) -> Result<u32, Error> {
    let mut ret = libc::SECCOMP_RET_ALLOW;
    for f in filters.iter().rev() {
        let cur = exec(&f.program, data)?;
        if action_of(cur) < action_of(ret) {
            ret = cur;
        }
    }
    Ok(ret)
}

/// What a program may read.
#[derive(Clone, Copy)]
enum Input<'a> {
    /// The whole `struct seccomp_data`.
    Data(&'a [u8; 64]),
    /// The number and the architecture only, with the emulation's instruction set.
    NrArch { nr: u32, arch: u32 },
}

impl Input<'_> {
    /// The 32-bit word at offset `k`.
    fn load(self, pc: usize, ins: &sock_filter) -> Result<u32, Error> {
        let at = usize::try_from(ins.k).unwrap_or(usize::MAX);
        match self {
            Input::Data(data) => data
                .get(at..at.saturating_add(4))
                .and_then(|w| <[u8; 4]>::try_from(w).ok())
                .map(u32::from_ne_bytes)
                .ok_or_else(|| invalid(pc, ins)),
            Input::NrArch { nr, .. } if at == 0 => Ok(nr),
            Input::NrArch { arch, .. } if at == 4 => Ok(arch),
            Input::NrArch { .. } => Err(Error::NotConstant(pc)),
        }
    }
}

fn interpret(prog: &[sock_filter], input: Input<'_>) -> Result<u32, Error> {
    let cache = matches!(input, Input::NrArch { .. });
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [None::<u32>; MEMWORDS];
    let mut pc = 0usize;
    for _ in 0..MAX_INSNS {
        let at = pc;
        let ins = prog.get(at).ok_or(Error::FellOffTheEnd(at))?;
        pc += 1;
        if cache && !CACHE_OPS.contains(&ins.code) {
            return Err(Error::NotConstant(at));
        }
        let k = ins.k;
        let slot = usize::try_from(k).unwrap_or(usize::MAX);
        let src = if ins.code & SRC_X != 0 { x } else { k };
        let scratch = |mem: &[Option<u32>]| {
            mem.get(slot)
                .copied()
                .flatten()
                .ok_or(Error::UnwrittenScratch(at))
        };
        let mut store = |v: u32| match mem.get_mut(slot) {
            Some(m) => {
                *m = Some(v);
                Ok(())
            }
            None => Err(invalid(at, ins)),
        };
        match ins.code {
            LD_W_ABS => a = input.load(at, ins)?,
            LD_IMM => a = k,
            LDX_IMM => x = k,
            LD_MEM => a = scratch(&mem)?,
            LDX_MEM => x = scratch(&mem)?,
            ST => store(a)?,
            STX => store(x)?,
            TAX => x = a,
            TXA => a = x,
            ALU_NEG => a = a.wrapping_neg(),
            RET_K => return Ok(k),
            RET_A => return Ok(a),
            JA => pc = pc.saturating_add(slot),
            c if is_alu(c) => {
                a = match c & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    // Classic BPF: division by a zero X ends the program with 0.
                    0x30 if src == 0 => return Ok(0),
                    0x30 => a / src,
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.checked_shl(src).ok_or(Error::Shift(at))?,
                    0x70 => a.checked_shr(src).ok_or(Error::Shift(at))?,
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
            _ => return Err(invalid(at, ins)),
        }
    }
    Err(Error::TooLong)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn ins(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
        sock_filter { code, jt, jf, k }
    }

    fn data(nr: i32, args: [u64; 6]) -> [u8; 64] {
        SeccompData {
            nr,
            arch: 0xC000_003E,
            instruction_pointer: 0x7f12_3456_789a,
            args,
        }
        .bytes()
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn it_reads_seccomp_data_in_the_machines_byte_order() {
        let b = SeccompData {
            nr: 0x0102_0304,
            arch: 0x0506_0708,
            instruction_pointer: 0x1112_1314_1516_1718,
            args: [0x2122_2324_2526_2728, 0, 0, 0, 0, 0x3132_3334_3536_3738],
        }
        .bytes();
        let load = |off| run(&[ins(0x20, 0, 0, off), ins(0x16, 0, 0, 0)], &b);
        assert_eq!(load(0), Ok(0x0102_0304));
        assert_eq!(load(4), Ok(0x0506_0708));
        assert_eq!(load(8), Ok(0x1516_1718));
        assert_eq!(load(12), Ok(0x1112_1314));
        assert_eq!(load(16), Ok(0x2526_2728));
        assert_eq!(load(20), Ok(0x2122_2324));
        assert_eq!(load(56), Ok(0x3536_3738));
        assert_eq!(load(60), Ok(0x3132_3334));
    }

    #[test]
    fn it_computes_and_jumps() {
        let b = data(7, [5, 0, 0, 0, 0, 0]);
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
        assert_eq!(run(&prog, &b), Ok(26));
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
    fn it_rejects(#[case] prog: Vec<sock_filter>) {
        let got = run(&prog, &data(0, [0; 6]));
        assert!(got.is_err(), "{got:?}");
    }

    #[test]
    fn the_stack_takes_the_strictest_and_the_latest_among_equals() {
        const KILL_PROCESS: u32 = 0x8000_0000;
        const KILL_THREAD: u32 = 0;
        const TRAP: u32 = 0x0003_0000;
        const ERRNO: u32 = 0x0005_0000;
        const LOG: u32 = 0x7ffc_0000;
        const ALLOW: u32 = 0x7fff_0000;
        let ret = |k| Filter {
            name: format!("{k:#x}"),
            program: vec![ins(0x06, 0, 0, k)],
        };
        let d = data(0, [0; 6]);
        let stack = |ks: &[u32]| exec_stack(&ks.iter().map(|k| ret(*k)).collect::<Vec<_>>(), &d);
        assert_eq!(stack(&[]), Ok(ALLOW));
        assert_eq!(stack(&[ALLOW, ERRNO | 1, LOG]), Ok(ERRNO | 1));
        assert_eq!(stack(&[ERRNO | 1, ERRNO | 38]), Ok(ERRNO | 38));
        assert_eq!(stack(&[ERRNO | 38, ERRNO | 1]), Ok(ERRNO | 1));
        assert_eq!(stack(&[KILL_THREAD, TRAP]), Ok(KILL_THREAD));
        assert_eq!(stack(&[KILL_PROCESS, KILL_THREAD]), Ok(KILL_PROCESS));
        assert_eq!(stack(&[LOG, ALLOW]), Ok(LOG));
    }

    /// The emulation decides on the number and the architecture, and gives up, as the kernel
    /// does, on a load of anything else or an instruction it doesn't know.
    #[test]
    fn the_action_cache_knows_only_the_number_and_the_architecture() {
        let allow = libc::SECCOMP_RET_ALLOW;
        let by_nr = [
            ins(0x20, 0, 0, 4),           // A = arch
            ins(0x15, 1, 0, 0xC000_003E), // x86_64?
            ins(0x06, 0, 0, 0),
            ins(0x20, 0, 0, 0),    // A = nr
            ins(0x54, 0, 0, 0xff), // A &= 0xff
            ins(0x25, 1, 0, 9),    // > 9?
            ins(0x06, 0, 0, allow),
            ins(0x20, 0, 0, 16), // A = args[0] (low half)
            ins(0x06, 0, 0, 1),
        ];
        assert_eq!(cached(&by_nr, 0xC000_003E, 3), Ok(allow));
        assert_eq!(cached(&by_nr, 0xC000_003E, 0x103), Ok(allow));
        assert_eq!(cached(&by_nr, 0x4000_0003, 3), Ok(0));
        assert_eq!(cached(&by_nr, 0xC000_003E, 10), Err(Error::NotConstant(7)));
        // The full interpreter reads the argument.
        assert_eq!(run(&by_nr, &data(10, [0; 6])), Ok(1));
        // RET A and the X register are beyond the emulation.
        let ret_a = [ins(0x20, 0, 0, 0), ins(0x16, 0, 0, 0)];
        assert_eq!(cached(&ret_a, 0xC000_003E, 0), Err(Error::NotConstant(1)));
        let tax = [ins(0x07, 0, 0, 0), ins(0x06, 0, 0, allow)];
        assert_eq!(cached(&tax, 0xC000_003E, 0), Err(Error::NotConstant(0)));
    }
}
