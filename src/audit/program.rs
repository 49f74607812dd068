//! Which program runs the battery inside the sandbox, and how it is linked.
//!
//! The battery is the same code in two programs: `kekkai-audit-probe` (installed beside kekkai;
//! `scripts/build-audit-probe` builds it static, so that it runs in any image) and kekkai itself
//! (`kekkai __probe`), used when no probe program is found. A dynamically linked probe runs only
//! where the sandbox shows the host's libraries (a sandbox of the host's own tree: bubblewrap
//! with `--ro-bind / /`, firejail, a kekkai policy over `/`); in an image it can't start, which
//! the audit says.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::Ctx;

/// The probe program's file name.
pub const PROBE_NAME: &str = "kekkai-audit-probe";

/// A program that runs the battery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeProgram {
    /// Where it is on the host.
    pub path: PathBuf,
    /// kekkai itself (`kekkai __probe ARGS`) or the probe program (`kekkai-audit-probe ARGS`).
    pub is_kekkai: bool,
    /// Its ELF interpreter (the dynamic loader), `None` when it is linked static.
    pub interpreter: Option<String>,
}

impl ProbeProgram {
    /// The program to use: `given` (`--probe FILE`), else `kekkai-audit-probe` beside kekkai's
    /// own executable `exe`, else kekkai itself.
    pub fn find(given: Option<&Path>, exe: &Path) -> std::io::Result<ProbeProgram> {
        let beside = exe.parent().map(|d| d.join(PROBE_NAME));
        let (path, is_kekkai) = match (given, beside) {
            (Some(p), _) => (p.to_path_buf(), false),
            (None, Some(b)) if b.is_file() => (b, false),
            _ => (exe.to_path_buf(), true),
        };
        let mut head = Vec::new();
        std::fs::File::open(&path)?
            .take(64 * 1024)
            .read_to_end(&mut head)?;
        let interpreter = match elf_interpreter(&head) {
            Ok(i) => i,
            Err(why) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {why}", path.display()),
                ));
            }
        };
        Ok(ProbeProgram {
            path,
            is_kekkai,
            interpreter,
        })
    }

    /// The arguments after the program's path, for `ctx` (and only `only`'s probes).
    pub fn args(&self, ctx: &Ctx, only: Option<&str>) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        if self.is_kekkai {
            args.push("__probe".into());
        }
        args.push("--context".into());
        args.push(serde_json::to_string(ctx).unwrap_or_default().into());
        if let Some(c) = only {
            args.push("--only".into());
            args.push(c.into());
        }
        args
    }

    /// How it is linked, for the report's notes.
    pub fn linkage(&self) -> String {
        let what = if self.is_kekkai {
            "kekkai itself (no kekkai-audit-probe beside it)".to_owned()
        } else {
            self.path.display().to_string()
        };
        match &self.interpreter {
            None => format!("the probe is {what}, linked static"),
            Some(i) => format!(
                "the probe is {what}, linked dynamically ({i}): it starts only where the sandbox shows the host's libraries; give a static one (scripts/build-audit-probe) with --probe"
            ),
        }
    }
}

/// The ELF interpreter named in the program headers of an x86_64 (or any 64-bit little-endian)
/// executable whose first bytes are `head`: `None` for a static executable.
pub fn elf_interpreter(head: &[u8]) -> Result<Option<String>, String> {
    let u16_at = |at: usize| -> Option<u64> {
        head.get(at..at + 2)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(|b| u64::from(u16::from_le_bytes(b)))
    };
    let u32_at = |at: usize| -> Option<u64> {
        head.get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| u64::from(u32::from_le_bytes(b)))
    };
    let u64_at = |at: usize| -> Option<u64> {
        head.get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    if head.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("not an ELF executable".into());
    }
    // ELFCLASS64, little-endian.
    if head.get(4..6) != Some([2u8, 1].as_slice()) {
        return Err("not a 64-bit little-endian ELF executable".into());
    }
    let at = |v: Option<u64>| v.and_then(|v| usize::try_from(v).ok());
    let (Some(phoff), Some(phentsize), Some(phnum)) =
        (at(u64_at(0x20)), at(u16_at(0x36)), at(u16_at(0x38)))
    else {
        return Err("truncated ELF header".into());
    };
    for i in 0..phnum {
        let ph = phoff.saturating_add(i.saturating_mul(phentsize));
        const PT_INTERP: u64 = 3;
        if u32_at(ph) != Some(PT_INTERP) {
            continue;
        }
        let (Some(off), Some(size)) = (at(u64_at(ph + 8)), at(u64_at(ph + 32))) else {
            return Err("truncated program header".into());
        };
        let name = head
            .get(off..off.saturating_add(size))
            .ok_or("the interpreter's name is past the first 64 KiB")?;
        let name = name.split(|b| *b == 0).next().unwrap_or_default();
        return Ok(Some(String::from_utf8_lossy(name).into_owned()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 header with one program header of type `ptype` naming `interp`.
    fn elf(ptype: u32, interp: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 64 + 56];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        h[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        h[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        h[64..68].copy_from_slice(&ptype.to_le_bytes());
        let off = crate::sys::abi::len64(h.len());
        h[64 + 8..64 + 16].copy_from_slice(&off.to_le_bytes());
        h[64 + 32..64 + 40].copy_from_slice(&crate::sys::abi::len64(interp.len()).to_le_bytes());
        h.extend_from_slice(interp);
        h
    }

    #[test]
    fn interpreters() {
        let dynamic = elf(3, b"/lib64/ld-linux-x86-64.so.2\0");
        assert_eq!(
            elf_interpreter(&dynamic),
            Ok(Some("/lib64/ld-linux-x86-64.so.2".into()))
        );
        assert_eq!(elf_interpreter(&elf(1, b"")), Ok(None));
        assert!(elf_interpreter(b"#!/bin/sh\n").is_err());
        assert!(elf_interpreter(&dynamic[..0x30]).is_err());
        let mut past = elf(3, b"x");
        past[64 + 8..64 + 16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(elf_interpreter(&past).is_err());
    }

    #[test]
    fn kekkai_itself_is_dynamic_here() {
        // The test binary, like kekkai, is linked against the host's C library.
        let exe = std::env::current_exe().unwrap();
        let p = ProbeProgram::find(Some(&exe), &exe).unwrap();
        assert!(p.interpreter.is_some(), "{p:?}");
    }
}
