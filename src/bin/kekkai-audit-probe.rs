//! `kekkai-audit-probe`: the escape battery of `kekkai audit` as a program of its own, to copy
//! into any sandbox, image or machine and run by hand (`--table` for people, JSON lines by
//! default), or to be run by `kekkai audit` inside the sandbox it audits. Build it static with
//! `scripts/build-audit-probe`, so that it runs where the host's libraries are not.

fn main() -> std::process::ExitCode {
    let status = kekkai::audit::battery::main(std::env::args_os().skip(1));
    std::process::ExitCode::from(u8::try_from(status).unwrap_or(1))
}
