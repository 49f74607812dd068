//! The policy's quantities: parsing sizes, durations, CPU amounts, octal modes and absolute
//! paths, and writing sizes back the way the policy language reads them.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// A size, or no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// This many (bytes, files, processes...).
    Finite(u64),
    /// No limit.
    Unlimited,
}

/// Parses `512M`, `1G`, `1.5G`, `64k`, `4096`, `10MiB`, `unlimited`. Suffixes are powers of 1024.
pub fn parse_size(text: &str) -> Result<Amount, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("unlimited") || t.eq_ignore_ascii_case("max") || t == "infinity" {
        return Ok(Amount::Unlimited);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "`{text}` is not a size; write e.g. 512M, 1G or 4096"
        ));
    }
    let shift: i32 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}`; use K, M, G or T (powers of 1024)"
            ));
        }
    };
    let bytes = if num.contains('.') {
        let f: f64 = num
            .parse()
            .map_err(|_| format!("`{text}` is not a size; write e.g. 512M, 1.5G or 4096"))?;
        // A power of two: the product is exact, and as precise as `f`.
        round_to_u64(f * 2f64.powi(shift)).ok_or_else(|| format!("`{text}` is too large"))?
    } else {
        num.parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(1 << shift))
            .ok_or_else(|| format!("`{text}` is too large"))?
    };
    Ok(Amount::Finite(bytes))
}

/// A byte count in the largest exact binary unit (`512M`, `1536M`, `4K`), plain bytes when no
/// unit divides it: what [`parse_size`] reads back to the same number. The one formatter of
/// sizes, for `explain`, `export` and messages.
pub fn format_size(n: u64) -> String {
    for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// Parses `30s`, `2m`, `1h30m`, `250ms`, `1.5s`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || format!("`{text}` is not a duration; write e.g. 30s, 2m, 1h30m or 250ms");
    let huge = || format!("`{text}` is too large a duration");
    if t.is_empty() {
        return Err(bad());
    }
    if t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        let secs: f64 = t.parse().map_err(|_| bad())?;
        return seconds(secs).ok_or_else(|| if secs >= 1e12 { huge() } else { bad() });
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(split);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let n: f64 = num.parse().map_err(|_| bad())?;
        let secs = match unit {
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            "d" => n * 86400.0,
            _ => return Err(bad()),
        };
        let part = seconds(secs).ok_or_else(|| if secs >= 1e12 { huge() } else { bad() })?;
        total = total.checked_add(part).ok_or_else(huge)?;
        rest = next;
    }
    Ok(total)
}

fn seconds(secs: f64) -> Option<Duration> {
    if secs.is_finite() && (0.0..1e12).contains(&secs) {
        Some(Duration::from_secs_f64(secs))
    } else {
        None
    }
}

/// Parses CPUs worth of time (`1.5`) into millicpus (1500).
pub fn parse_cpu(text: &str) -> Result<u64, String> {
    let f: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of CPUs; write e.g. 1.5 or 0.25"))?;
    if !f.is_finite() {
        return Err(format!("`{text}` is not a finite number of CPUs"));
    }
    if f <= 0.0 {
        return Err(format!("`{text}`: the CPU amount must be above 0"));
    }
    if f > 4096.0 {
        return Err(format!("`{text}`: more CPUs than any machine has"));
    }
    let milli = round_to_u64(f * 1000.0)
        .ok_or_else(|| format!("`{text}`: more CPUs than any machine has"))?;
    if milli == 0 {
        return Err(format!("`{text}`: the smallest CPU amount is 0.001"));
    }
    Ok(milli)
}

/// `v` rounded to the nearest whole number, if that is a `u64` (finite, not negative, below
/// 2^64). Rust has no `TryFrom<f64>`: this is the one conversion of a fraction to an integer,
/// and the cast in it is exact, the range being checked first.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn round_to_u64(v: f64) -> Option<u64> {
    // 2^64, exactly representable; every whole f64 below it fits in a u64.
    const LIMIT: f64 = 18_446_744_073_709_551_616.0;
    let r = v.round();
    (r.is_finite() && (0.0..LIMIT).contains(&r)).then_some(r as u64)
}

/// Parses an octal mode: `1777`, `0755`, `755`.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    if digits.is_empty() || digits.len() > 5 {
        return Err(format!(
            "`{text}` is not an octal mode; write e.g. \"0755\""
        ));
    }
    let mode = u32::from_str_radix(digits, 8)
        .map_err(|_| format!("`{text}` is not an octal mode; write e.g. \"0755\""))?;
    if mode > 0o7777 {
        return Err(format!("`{text}` is larger than 7777"));
    }
    Ok(mode)
}

/// Checks and normalizes an absolute path: no `..`, no NUL; `.` and repeated `/` collapse.
pub fn normalize_abs(text: &str) -> Result<PathBuf, String> {
    if text.contains('\0') {
        return Err("a path can't contain a NUL byte".into());
    }
    if !text.starts_with('/') {
        return Err(format!("`{text}` is not an absolute path"));
    }
    let mut out = PathBuf::from("/");
    for c in Path::new(text).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                return Err(format!("`{text}` contains `..`; write the path without it"));
            }
            Component::Prefix(_) => return Err(format!("`{text}` is not a Linux path")),
        }
    }
    Ok(out)
}

/// Is `path` absolute and normalized, as the kernel and [`normalize_abs`] write paths: `/`, or
/// `/` followed by components separated by single slashes, none of them empty or `.`, and no
/// slash at the end? (`..` is a name to a byte comparison, as it is to `Path::starts_with`.)
fn is_normalized(path: &[u8]) -> bool {
    match path.split_first() {
        Some((b'/', [])) => true,
        Some((b'/', rest)) => rest
            .split(|&b| b == b'/')
            .all(|c| !c.is_empty() && c != b"."),
        _ => false,
    }
}

/// A path to compare with others many times, byte by byte where both are normalized absolute
/// paths (mount points from the kernel, canonical or normalized paths of the plan): std's
/// comparisons parse both into components, which cost more than the rest of the root's
/// planning together; any other path is still compared by components. Whether it is
/// normalized is found out once.
#[derive(Debug, Clone, Copy)]
pub struct Compared<'a> {
    path: &'a Path,
    normalized: bool,
}

impl<'a> Compared<'a> {
    /// Prepares `path`.
    pub fn new(path: &'a Path) -> Self {
        Compared {
            path,
            normalized: is_normalized(path.as_os_str().as_bytes()),
        }
    }

    /// Is this path `dir` or below it? What `path.starts_with(dir)` says: `/usr/lib` is within
    /// `/usr`, `/usrx` is not, everything is within `/`.
    pub fn within(&self, dir: &Compared<'_>) -> bool {
        if !(self.normalized && dir.normalized) {
            return self.path.starts_with(dir.path);
        }
        let (p, d) = (self.bytes(), dir.bytes());
        d == b"/" || (p.starts_with(d) && matches!(p.get(d.len()), None | Some(b'/')))
    }

    /// Is this path `other`? What `path == other` says.
    pub fn same(&self, other: &Compared<'_>) -> bool {
        if self.normalized && other.normalized {
            self.bytes() == other.bytes()
        } else {
            self.path == other.path
        }
    }

    fn bytes(&self) -> &[u8] {
        self.path.as_os_str().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// (path, dir) → `within`, which must be what `Path::starts_with` says; and `same_path`,
    /// which must be what `==` says. Normalized paths take the byte comparison, the others
    /// std's.
    #[rstest]
    #[case("/usr", "/usr", true)]
    #[case("/usr/lib", "/usr", true)]
    #[case("/usr/lib/x", "/usr", true)]
    #[case("/usrx", "/usr", false)]
    #[case("/usr", "/usrx", false)]
    #[case("/us", "/usr", false)]
    #[case("/usr", "/usr/lib", false)]
    #[case("/", "/", true)]
    #[case("/usr", "/", true)]
    #[case("/", "/usr", false)]
    #[case("/a/b/c", "/a/b", true)]
    #[case("/a/bc", "/a/b", false)]
    #[case("/a/b", "/a/bc", false)]
    #[case("/mnt/usb/ram", "/mnt/usb", true)]
    #[case("/mnt/usbx/ram", "/mnt/usb", false)]
    #[case("/..", "/", true)]
    #[case("/a/..", "/a", true)]
    #[case("/é/ü", "/é", true)]
    // Not normalized: std's comparison by components.
    #[case("/usr/", "/usr", true)]
    #[case("/usr", "/usr/", true)]
    #[case("/usr//lib", "/usr/lib", true)]
    #[case("/usr/./lib", "/usr/lib", true)]
    #[case("//usr", "/usr", true)]
    #[case("/usr/lib/.", "/usr/lib", true)]
    #[case("usr/lib", "usr", true)]
    #[case("usr/lib", "/usr", false)]
    #[case("/usr/lib", "usr", false)]
    #[case("", "", true)]
    #[case("/x", "", true)]
    fn within_is_starts_with(#[case] path: &str, #[case] dir: &str, #[case] want: bool) {
        let (p, d) = (Path::new(path), Path::new(dir));
        let (cp, cd) = (Compared::new(p), Compared::new(d));
        assert_eq!(cp.within(&cd), want, "{path} within {dir}");
        assert_eq!(p.starts_with(d), want, "std: {path} starts with {dir}");
        assert_eq!(cp.same(&cd), p == d, "{path} == {dir}");
        assert_eq!(cd.same(&cp), d == p, "{dir} == {path}");
    }

    #[rstest]
    #[case("/", true)]
    #[case("/usr", true)]
    #[case("/usr/lib", true)]
    #[case("/a b/c", true)]
    #[case("/usr/", false)]
    #[case("//", false)]
    #[case("/usr//lib", false)]
    #[case("/./usr", false)]
    #[case("/usr/.", false)]
    #[case("usr", false)]
    #[case("", false)]
    fn normalized_paths(#[case] path: &str, #[case] want: bool) {
        assert_eq!(is_normalized(path.as_bytes()), want, "{path}");
    }

    #[rstest]
    #[case("4096", Amount::Finite(4096))]
    #[case("64k", Amount::Finite(65536))]
    #[case("512M", Amount::Finite(512 << 20))]
    #[case("512MiB", Amount::Finite(512 << 20))]
    #[case("1G", Amount::Finite(1 << 30))]
    #[case("1.5G", Amount::Finite(3 << 29))]
    #[case("0.5K", Amount::Finite(512))]
    #[case("0.1K", Amount::Finite(102))]
    #[case(" 2 T ", Amount::Finite(2 << 40))]
    #[case("0", Amount::Finite(0))]
    #[case("unlimited", Amount::Unlimited)]
    fn sizes(#[case] input: &str, #[case] want: Amount) {
        assert_eq!(parse_size(input), Ok(want));
    }

    #[rstest]
    #[case(0, "0")]
    #[case(1000, "1000")]
    #[case(1023, "1023")]
    #[case(1024, "1K")]
    #[case(4096, "4K")]
    #[case(512 << 20, "512M")]
    #[case(3 << 29, "1536M")]
    #[case(1 << 30, "1G")]
    #[case((1 << 30) + 1, "1073741825")]
    #[case(3 << 40, "3T")]
    fn formatted_sizes(#[case] n: u64, #[case] want: &str) {
        assert_eq!(format_size(n), want);
        assert_eq!(parse_size(&format_size(n)), Ok(Amount::Finite(n)));
    }

    #[rstest]
    #[case("12X")]
    #[case("M")]
    #[case("")]
    #[case("-5")]
    #[case("1.2.3G")]
    #[case("99999999999999999999")]
    #[case("99999999999T")]
    #[case("20000000.5T")]
    fn bad_sizes(#[case] input: &str) {
        assert!(parse_size(input).is_err(), "{input}");
    }

    #[rstest]
    #[case(0.0, Some(0))]
    #[case(0.4, Some(0))]
    #[case(1.5, Some(2))]
    #[case(1536.0 * 1024.0 * 1024.0, Some(3 << 29))]
    #[case(18_446_744_073_709_549_568.0, Some(u64::MAX - 2047))]
    #[case(18_446_744_073_709_551_616.0, None)]
    #[case(-1.0, None)]
    #[case(f64::NAN, None)]
    #[case(f64::INFINITY, None)]
    fn rounded_to_u64(#[case] v: f64, #[case] want: Option<u64>) {
        assert_eq!(round_to_u64(v), want);
    }

    #[rstest]
    #[case("30", 30_000)]
    #[case("30s", 30_000)]
    #[case("2m", 120_000)]
    #[case("1h30m", 5_400_000)]
    #[case("250ms", 250)]
    #[case("1.5s", 1500)]
    fn durations(#[case] input: &str, #[case] millis: u128) {
        assert_eq!(parse_duration(input).unwrap().as_millis(), millis);
    }

    #[rstest]
    #[case("")]
    #[case("5x")]
    #[case("s")]
    #[case("-1")]
    #[case("1e30")]
    #[case("NaN")]
    fn bad_durations(#[case] input: &str) {
        assert!(parse_duration(input).is_err(), "{input}");
    }

    #[rstest]
    #[case("1.5", Ok(1500))]
    #[case("0.25", Ok(250))]
    #[case("2", Ok(2000))]
    #[case("0", Err(()))]
    #[case("-1", Err(()))]
    #[case("abc", Err(()))]
    #[case("0.0001", Err(()))]
    fn cpus(#[case] input: &str, #[case] want: Result<u64, ()>) {
        assert_eq!(parse_cpu(input).map_err(|_| ()), want);
    }

    #[rstest]
    #[case("1777", Ok(0o1777))]
    #[case("0755", Ok(0o755))]
    #[case("0o700", Ok(0o700))]
    #[case("9", Err(()))]
    #[case("77777", Err(()))]
    fn modes(#[case] input: &str, #[case] want: Result<u32, ()>) {
        assert_eq!(parse_mode(input).map_err(|_| ()), want);
    }
}
