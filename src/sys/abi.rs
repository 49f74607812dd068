//! Integers as the kernel's interface reads them: the few places where a value of one Rust
//! integer type stands for the bits of another. A system call's argument register holds 64
//! bits whatever C type the argument has (an `int` fd of -100 is `0xffff_ffff_ffff_ff9c`), the
//! i386 entry returns 32 bits in eax, and `seccomp_data.nr` is an `int` whose top bits a
//! foreign ABI sets. Each function is the same bits read as the other type, spelled with byte
//! arrays so that it is exact by construction: no `as` cast, nothing to round or wrap.
//!
//! Everywhere else in kekkai a conversion between integer types is `From` where it is
//! lossless and `try_from` with an error where a value can be out of range.

/// A signed value as the 64-bit register that carries it: two's complement, so `-1` is
/// `u64::MAX`. What a negative `int` or `long` argument of a system call is to the kernel.
pub const fn register(n: i64) -> u64 {
    u64::from_ne_bytes(n.to_ne_bytes())
}

/// A register's 64 bits read as signed: the inverse of [`register`].
pub const fn signed(n: u64) -> i64 {
    i64::from_ne_bytes(n.to_ne_bytes())
}

/// The low 32 bits of a register, read as a signed `int`: what the i386 entry (`int 0x80`)
/// returns in eax, a negative errno on failure.
pub const fn low_int(n: i64) -> i32 {
    let b = n.to_le_bytes();
    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// 32 bits read as a signed `int`: a system call number with the x32 bit (or any higher bit)
/// set, as `seccomp_data.nr` holds it.
pub const fn int_bits(n: u32) -> i32 {
    i32::from_ne_bytes(n.to_ne_bytes())
}

/// A signed `int` read as its 32 bits: the inverse of [`int_bits`].
pub const fn uint_bits(n: i32) -> u32 {
    u32::from_ne_bytes(n.to_ne_bytes())
}

/// The address `p` points at, as a system call's argument register holds it, for a call that
/// reads or writes memory there. The pointer's provenance is exposed: the kernel accesses the
/// memory by this address. A pointer is at most 64 bits wide on every Linux target, so the
/// conversion never fails; if it did, `u64::MAX` is an address the kernel refuses (EFAULT).
pub fn address<T: ?Sized>(p: *const T) -> u64 {
    u64::try_from(p.cast::<u8>().expose_provenance()).unwrap_or(u64::MAX)
}

/// A length in memory as the 64-bit count that file sizes and offsets are kept in (`off_t`,
/// a tar header's size, a byte tally). Exact: `usize` is at most 64 bits wide on every Linux
/// target (Rust offers no `From` only because it leaves room for wider ones); a length past
/// 2^64 would saturate.
pub fn len64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::zero(0, 0)]
    #[case::minus_one(-1, u64::MAX)]
    #[case::at_fdcwd(-100, 0xffff_ffff_ffff_ff9c)]
    #[case::max(i64::MAX, 0x7fff_ffff_ffff_ffff)]
    #[case::min(i64::MIN, 0x8000_0000_0000_0000)]
    fn register_is_twos_complement(#[case] n: i64, #[case] bits: u64) {
        assert_eq!(register(n), bits);
        assert_eq!(signed(bits), n);
    }

    #[rstest]
    #[case::pid(20, 20)]
    #[case::sign_extended_enosys(0xffff_ffff_ffff_ffda, -38)]
    #[case::zero_extended_enosys(0x0000_0000_ffff_ffda, -38)]
    #[case::upper_bits_ignored(0x1234_5678_0000_0007, 7)]
    fn low_int_is_eax(#[case] rax: u64, #[case] eax: i32) {
        assert_eq!(low_int(signed(rax)), eax);
    }

    #[rstest]
    #[case::plain(39, 39)]
    #[case::x32(0x4000_0027, 0x4000_0027)]
    #[case::top_bit(0xc000_0000, -0x4000_0000)]
    fn int_bits_round_trip(#[case] n: u32, #[case] int: i32) {
        assert_eq!(int_bits(n), int);
        assert_eq!(uint_bits(int), n);
    }

    #[test]
    fn len64_is_the_length() {
        assert_eq!(len64(0), 0);
        assert_eq!(len64(4096), 4096);
        assert_eq!(len64(usize::MAX), u64::MAX);
    }

    #[test]
    fn address_is_the_pointer() {
        static BYTE: u8 = 7;
        let p = &raw const BYTE;
        assert_eq!(address(p), u64::try_from(p.addr()).unwrap());
        assert_eq!(address(std::ptr::null::<u8>()), 0);
    }
}
