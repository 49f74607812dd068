//! The engine's verbs on named and detached sandboxes: `ps`, `enter`, `stop`, `kill`, `wait`,
//! `logs`, `stats`, `rm`, all reading the caller's state directory (`kekkai::state`). A pid is
//! signalled only through a pidfd checked against the record (pid and start time), so a process
//! that took a dead sandbox's pid is never touched.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;

use kekkai::error::Error;
use kekkai::exit;
use kekkai::launch::cgroup::v2;
use kekkai::log;
use kekkai::state::{self, Entry, Record, StateDir, Status, usage};

use super::{EnterArgs, KillArgs, LogsArgs, PsArgs, RmArgs, StatsArgs, StopArgs};

/// The caller's state directory.
pub(crate) fn state_dir() -> Result<StateDir, Error> {
    let euid = nix::unistd::geteuid().as_raw();
    Ok(StateDir::open(
        euid,
        std::env::var_os("XDG_RUNTIME_DIR").as_deref(),
    )?)
}

/// The entry and record of `name`.
fn find(sd: &StateDir, name: &str) -> Result<(Entry, Record), Error> {
    let e = sd.entry(name)?;
    let r = e.record()?;
    Ok((e, r))
}

/// Waits until the process behind `pidfd` has ended, at most `limit` (`None`: no limit).
/// Returns whether it ended.
fn wait_exit(pidfd: BorrowedFd<'_>, limit: Option<Duration>) -> bool {
    let deadline = limit.map(|l| Instant::now() + l);
    loop {
        let left = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) => PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
                None => return false,
            },
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(pidfd, PollFlags::POLLIN)];
        match poll(&mut fds, left) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Waits (at most `limit`) for the supervisor to record the end and exit.
fn wait_supervisor(r: &Record, limit: Option<Duration>) -> bool {
    match r.supervisor_pidfd() {
        Some(fd) => wait_exit(fd.as_fd(), limit),
        None => true,
    }
}

#[derive(serde::Serialize)]
struct PsRow {
    name: String,
    owner: u32,
    pid: Option<i32>,
    policy: String,
    command: Vec<String>,
    status: Status,
    created: u64,
    uptime_secs: Option<u64>,
    memory: Option<u64>,
    pids: Option<u64>,
}

fn row(r: &Record) -> PsRow {
    let status = r.status();
    let running = r.sandbox_pidfd().filter(|_| status.running());
    let u = running
        .as_ref()
        .and_then(|(fd, p)| p.read(fd.as_fd(), usage::of));
    PsRow {
        name: r.name.clone(),
        owner: r.owner,
        pid: running.as_ref().map(|(_, p)| p.pid),
        policy: r.policy.clone(),
        command: r.command.clone(),
        status,
        created: r.created,
        uptime_secs: running
            .as_ref()
            .map(|_| state::now().saturating_sub(r.created)),
        memory: u.as_ref().and_then(|u| u.memory),
        pids: u.as_ref().and_then(|u| u.pids),
    }
}

/// Root's view of the users' state directories (`/run/user/UID/kekkai`, where a login session
/// puts XDG_RUNTIME_DIR), each checked as its owner's own (owner UID, mode 0700, no link); for
/// `ps` only: root never acts on a user's record.
fn users_state_dirs() -> Vec<StateDir> {
    let Ok(dirs) = std::fs::read_dir("/run/user") else {
        return Vec::new();
    };
    let mut out: Vec<StateDir> = dirs
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|uid| *uid != 0)
        .filter_map(|uid| {
            let path = std::path::PathBuf::from(format!("/run/user/{uid}/kekkai"));
            StateDir::open_existing(&path, uid).ok()
        })
        .collect();
    out.sort_by_key(|d| d.owner);
    out
}

/// `kekkai ps [-a] [--json]`: the caller's sandboxes; root's also lists the users'.
pub(crate) fn ps(args: &PsArgs) -> Result<i32, Error> {
    let sd = state_dir()?;
    let mut rows = Vec::new();
    let root = sd.owner == 0;
    let mut dirs = vec![sd];
    if root {
        dirs.extend(users_state_dirs());
    }
    for sd in &dirs {
        // A user's directory holds what the user put there: at most RECORDS_MAX entries of
        // each are read (every record is opened non-blocking and must be a regular file, so a
        // fifo planted as a record can't hold root's `ps` either).
        let (names, cut) = sd.names_at_most(state::RECORDS_MAX);
        if cut {
            log::warn(&format!(
                "{}: more than {} entries; only the first {} were read",
                sd.path.display(),
                state::RECORDS_MAX,
                state::RECORDS_MAX
            ));
        }
        for name in names {
            match find(sd, &name) {
                Ok((_, r)) => {
                    let row = row(&r);
                    if args.all || row.status.running() {
                        rows.push(row);
                    }
                }
                Err(e) => log::warn(&format!("{name}: {e}")),
            }
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return Ok(0);
    }
    let dash = || "-".to_string();
    let mut out = String::new();
    let header = format!(
        "{:<20} {:>8} {:<12} {:<26} {:>8} {:>9} {:>5}  COMMAND",
        "NAME", "PID", "POLICY", "STATUS", "UPTIME", "MEMORY", "PIDS"
    );
    out.push_str(&if root {
        format!("{header}  OWNER\n")
    } else {
        format!("{header}\n")
    });
    // The policy and the command are what the record says: another user's choice in root's
    // `ps`, shown and never interpreted by root's terminal (an escape sequence in an argument
    // of a user's sandbox once set root's window title and cleared its screen).
    for r in &rows {
        let command: Vec<String> = r.command.iter().map(|a| log::printable(a)).collect();
        let line = format!(
            "{:<20} {:>8} {:<12} {:<26} {:>8} {:>9} {:>5}  {}",
            r.name,
            r.pid.map_or_else(dash, |p| p.to_string()),
            log::printable(&r.policy),
            r.status.word(),
            r.uptime_secs.map_or_else(dash, usage::uptime),
            r.memory.map_or_else(dash, usage::human),
            r.pids.map_or_else(dash, |p| p.to_string()),
            command.join(" "),
        );
        out.push_str(&line);
        if root {
            out.push_str(&format!("  {}", r.owner));
        }
        out.push('\n');
    }
    print!("{out}");
    Ok(0)
}

/// `kekkai enter NAME [-- CMD]`.
pub(crate) fn enter(args: &EnterArgs, verbosity: i8) -> Result<i32, Error> {
    let sd = state_dir()?;
    let (entry, r) = find(&sd, &args.name)?;
    if r.owner != nix::unistd::geteuid().as_raw() {
        return Err(Error::Host(format!(
            "{}: the sandbox belongs to uid {}",
            args.name, r.owner
        )));
    }
    let Some((pidfd, first)) = r.sandbox_pidfd().filter(|_| r.status().running()) else {
        return Err(Error::Host(format!(
            "{}: the sandbox is not running ({})",
            args.name,
            r.status().word()
        )));
    };
    let mut plan = entry.plan()?;
    if args.pty {
        plan.terminal = kekkai::plan::Terminal::Pty;
    } else if args.no_pty {
        plan.terminal = kekkai::plan::Terminal::Inherit;
    }
    // The cgroups are read of the first process, the v2 one opened and checked, and kept only
    // if the first process is still alive after (a process that took its pid in between would
    // have named its own).
    let name = r.cgroup_name();
    let Some((v2, v1, v1_ours)) = first.read(pidfd.as_fd(), |pid| {
        let (v2, v1) = usage::cgroups_of(pid);
        let v2 = match (v2, name.as_deref()) {
            (Some(dir), Some(name)) => Some(
                v2::open_sandbox(&dir, name)
                    .map_err(|e| format!("{}: open({}): {e}", args.name, dir.display())),
            ),
            (Some(dir), None) => Some(Err(format!(
                "{}: {} is not the sandbox's cgroup",
                args.name,
                dir.display()
            ))),
            (None, _) => None,
        };
        // The v1 cgroups are joined by path (cgroup.procs): each must be named after the
        // record's supervisor too.
        let v1_ours = v1
            .iter()
            .all(|(_, d)| d.file_name().and_then(|n| n.to_str()) == name.as_deref());
        (v2.transpose(), v1, v1_ours)
    }) else {
        return Err(Error::Host(format!(
            "{}: the sandbox is not running",
            args.name
        )));
    };
    let v2 = v2.map_err(Error::Host)?;
    if !v1_ours {
        return Err(Error::Host(format!(
            "{}: a cgroup v1 directory of the sandbox is not named after its supervisor",
            args.name
        )));
    }
    let Some((program, _)) = state::program_of(first, pidfd, plan.as_pid_1) else {
        return Err(Error::Host(format!(
            "{}: the sandbox's program is gone",
            args.name
        )));
    };
    let target = kekkai::launch::enter::Target {
        pidfd: program.as_fd(),
        v2,
        v1: v1.into_iter().map(|(_, d)| d).collect(),
    };
    let command = if args.command.is_empty() {
        vec![OsString::from("/bin/sh")]
    } else {
        args.command.clone()
    };
    let mut opts = kekkai::launch::Options::from_env();
    opts.quiet = true;
    let outcome = kekkai::launch::enter::enter(&plan, &target, &command, &opts)?;
    if let Some(e) = &outcome.setup_error {
        return Err(Error::Launch(e.clone()));
    }
    if let Some((program, errno)) = &outcome.exec_error {
        if verbosity >= 0 {
            let e = nix::errno::Errno::from_raw(*errno);
            log::error(&format!("{program}: {} ({e:?})", e.desc().to_lowercase()));
        }
    }
    Ok(outcome.exit_code)
}

/// Sends signal `signo` to the sandbox's first process (PID 1 inside), which passes it on to
/// the program; `None` when the sandbox is not running.
fn signal(r: &Record, signo: libc::c_int) -> Option<()> {
    let (fd, _) = r.sandbox_pidfd().filter(|_| r.status().running())?;
    kekkai::sys::pidfd_send_signo(fd.as_fd(), signo).ok()
}

/// Kills every process of the sandbox: SIGKILL to its first process (which, as PID 1 of its
/// pid namespace, takes the namespace with it), and its cgroup's `cgroup.kill` where it has one.
/// The cgroup is read from /proc/PID/cgroup of the first process and its directory opened and
/// checked (`cgroup::v2::open_sandbox`: cgroupfs, named after the record's supervisor) before
/// the first process is confirmed still alive ([`state::Proc::read`]): a process that took its
/// pid in between never names the cgroup killed. `cgroup.kill` is written below that descriptor.
fn kill_all(r: &Record) {
    let Some((fd, first)) = r.sandbox_pidfd() else {
        return;
    };
    let name = r.cgroup_name();
    let cgroup = first
        .read(fd.as_fd(), |pid| {
            let dir = usage::cgroups_of(pid).0?;
            let name = name.as_deref()?;
            Some((v2::open_sandbox(&dir, name), dir))
        })
        .flatten();
    match kekkai::sys::pidfd_send_signal(fd.as_fd(), Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => log::warn(&format!("{}: pidfd_send_signal(SIGKILL): {e}", r.name)),
    }
    match cgroup {
        Some((Ok(dir_fd), dir)) => {
            if let Err(e) = v2::kill_at(dir_fd.as_fd()) {
                log::warn(&format!(
                    "{}: write({}/cgroup.kill): {e}",
                    r.name,
                    dir.display()
                ));
            }
        }
        Some((Err(e), dir)) => log::warn(&format!(
            "{}: {} is not the sandbox's cgroup, not killed: {e}",
            r.name,
            dir.display()
        )),
        None => {}
    }
}

/// How long `stop` and `rm -f` wait for the supervisor to record the end after the kill.
const RECORD_WAIT: Duration = Duration::from_secs(15);

/// `kekkai stop NAME [--time 10s]`.
pub(crate) fn stop(args: &StopArgs) -> Result<i32, Error> {
    let grace = kekkai::plan::units::parse_duration(&args.time)
        .map_err(|e| Error::Usage(format!("--time: {e}")))?;
    let sd = state_dir()?;
    let (entry, r) = find(&sd, &args.name)?;
    let Some((fd, _)) = r.sandbox_pidfd().filter(|_| r.status().running()) else {
        log::error(&format!(
            "{}: the sandbox is not running ({})",
            args.name,
            r.status().word()
        ));
        return Ok(exit::NOT_RUNNING);
    };
    let _ = kekkai::sys::pidfd_send_signal(fd.as_fd(), Signal::SIGTERM);
    if !wait_exit(fd.as_fd(), Some(grace)) {
        kill_all(&r);
    }
    wait_supervisor(&r, Some(RECORD_WAIT));
    let status = entry.record().map(|r| r.status());
    match status {
        Ok(s) => log::notice(&format!("{}: {}", args.name, s.word())),
        Err(_) => log::notice(&format!("{}: stopped", args.name)),
    }
    println!("{}", args.name);
    Ok(0)
}

/// A signal by name (`TERM`, `SIGTERM`, `term`), real-time name as kill(1) takes it (`RTMIN`,
/// `RTMIN+3`, `SIGRTMAX-1`) or number, as its raw number (nix's `Signal` has no real-time
/// signals). glibc's own 32 and 33 are refused, as every number outside 1..=SIGRTMAX.
fn parse_signal(s: &str) -> Option<libc::c_int> {
    let realtime = libc::SIGRTMIN()..=libc::SIGRTMAX();
    if let Ok(n) = s.parse::<i32>() {
        return (Signal::try_from(n).is_ok() || realtime.contains(&n)).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let rt = |base: libc::c_int, rest: &str| -> Option<libc::c_int> {
        let n = match rest.split_at_checked(1) {
            None => base,
            Some(("+", k)) if base == libc::SIGRTMIN() => base.checked_add(k.parse().ok()?)?,
            Some(("-", k)) if base == libc::SIGRTMAX() => base.checked_sub(k.parse().ok()?)?,
            Some(_) => return None,
        };
        realtime.contains(&n).then_some(n)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(libc::SIGRTMIN(), rest);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(libc::SIGRTMAX(), rest);
    }
    format!("SIG{name}")
        .parse::<Signal>()
        .ok()
        .map(|sig| sig as libc::c_int)
}

/// `kekkai kill NAME [SIGNAL]`.
pub(crate) fn kill(args: &KillArgs) -> Result<i32, Error> {
    let Some(sig) = parse_signal(&args.signal) else {
        return Err(Error::Usage(format!("`{}` is not a signal", args.signal)));
    };
    let sd = state_dir()?;
    let (_, r) = find(&sd, &args.name)?;
    if sig == libc::SIGKILL {
        if r.sandbox_pidfd().filter(|_| r.status().running()).is_none() {
            log::error(&format!("{}: the sandbox is not running", args.name));
            return Ok(exit::NOT_RUNNING);
        }
        kill_all(&r);
        return Ok(0);
    }
    match signal(&r, sig) {
        Some(()) => Ok(0),
        None => {
            log::error(&format!("{}: the sandbox is not running", args.name));
            Ok(exit::NOT_RUNNING)
        }
    }
}

/// `kekkai wait NAME`: the exit status, printed and as the exit code.
pub(crate) fn wait(name: &str) -> Result<i32, Error> {
    let sd = state_dir()?;
    let (entry, r) = find(&sd, name)?;
    if r.status().running() {
        wait_supervisor(&r, None);
    }
    let r = entry.record()?;
    match r.status() {
        Status::Exited { exit_code } => {
            println!("{exit_code}");
            Ok(exit_code)
        }
        s => {
            log::error(&format!("{name}: {}", s.word()));
            println!("{}", exit::LAUNCH);
            Ok(exit::LAUNCH)
        }
    }
}

/// `kekkai logs NAME [-f]`.
pub(crate) fn logs(args: &LogsArgs) -> Result<i32, Error> {
    let sd = state_dir()?;
    let (entry, r) = find(&sd, &args.name)?;
    let mut out = std::io::stdout().lock();
    let files = entry.log_files();
    if files.is_empty() {
        log::warn(&format!(
            "{}: no log (it was not detached, or its output went to the journal)",
            args.name
        ));
        return Ok(0);
    }
    let copy = |f: &mut std::fs::File, out: &mut std::io::StdoutLock<'_>| -> u64 {
        let mut buf = [0u8; 16384];
        let mut n = 0u64;
        while let Ok(k) = f.read(&mut buf) {
            if k == 0 || out.write_all(&buf[..k]).is_err() {
                break;
            }
            n += k as u64;
        }
        n
    };
    let mut last = None;
    for mut f in files {
        copy(&mut f, &mut out);
        last = Some(f);
    }
    let _ = out.flush();
    if !args.follow {
        return Ok(0);
    }
    // Follow: read what is appended; a rotation (log renamed to log.1) is seen as a new inode.
    let sup = r.supervisor_pidfd();
    let mut cur = last;
    loop {
        if let Some(f) = cur.as_mut() {
            copy(f, &mut out);
            let _ = out.flush();
        }
        let ended = sup
            .as_ref()
            .is_none_or(|fd| wait_exit(fd.as_fd(), Some(Duration::from_millis(200))));
        if let Ok(mut now) = entry.open_log() {
            let same = cur.as_ref().is_some_and(|c| {
                use std::os::unix::fs::MetadataExt;
                match (c.metadata(), now.metadata()) {
                    (Ok(a), Ok(b)) => a.ino() == b.ino(),
                    _ => false,
                }
            });
            if !same {
                if let Some(f) = cur.as_mut() {
                    copy(f, &mut out);
                }
                copy(&mut now, &mut out);
                cur = Some(now);
            }
        }
        if ended {
            if let Some(f) = cur.as_mut() {
                copy(f, &mut out);
            }
            let _ = out.flush();
            return Ok(0);
        }
    }
}

#[derive(serde::Serialize)]
struct StatsRow {
    name: String,
    pid: i32,
    #[serde(flatten)]
    usage: usage::Usage,
}

/// `kekkai stats [NAME] [--json] [--watch]`.
pub(crate) fn stats(args: &StatsArgs) -> Result<i32, Error> {
    let sd = state_dir()?;
    loop {
        let names = match &args.name {
            Some(n) => vec![n.clone()],
            None => sd.names(),
        };
        let mut rows = Vec::new();
        for name in names {
            let (_, r) = find(&sd, &name)?;
            match r.sandbox_pidfd().filter(|_| r.status().running()) {
                Some((fd, p)) => rows.push(StatsRow {
                    name,
                    pid: p.pid,
                    usage: p.read(fd.as_fd(), usage::of).unwrap_or_default(),
                }),
                None if args.name.is_some() => {
                    log::error(&format!("{name}: the sandbox is not running"));
                    return Ok(exit::NOT_RUNNING);
                }
                None => {}
            }
        }
        let mut out = String::new();
        if args.watch {
            out.push_str("\x1b[H\x1b[2J");
        }
        if args.json {
            out.push_str(&serde_json::to_string_pretty(&rows).unwrap_or_default());
            out.push('\n');
        } else {
            let dash = || "-".to_string();
            out.push_str(&format!(
                "{:<20} {:>8} {:>9} {:>9} {:>5} {:>10}\n",
                "NAME", "PID", "MEMORY", "PEAK", "PIDS", "CPU"
            ));
            for r in &rows {
                let u = &r.usage;
                out.push_str(&format!(
                    "{:<20} {:>8} {:>9} {:>9} {:>5} {:>10}\n",
                    r.name,
                    r.pid,
                    u.memory.map_or_else(dash, usage::human),
                    u.memory_peak.map_or_else(dash, usage::human),
                    u.pids.map_or_else(dash, |p| p.to_string()),
                    u.cpu_usec
                        .map_or_else(dash, |c| format!("{:.2}s", c as f64 / 1e6)),
                ));
            }
        }
        print!("{out}");
        let _ = std::io::stdout().flush();
        if !args.watch {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `kekkai rm [-f] NAME...`.
pub(crate) fn rm(args: &RmArgs) -> Result<i32, Error> {
    let sd = state_dir()?;
    let mut code = 0;
    for name in &args.names {
        let (entry, r) = find(&sd, name)?;
        if r.status().running() {
            if !args.force {
                log::error(&format!(
                    "{name}: the sandbox is running (kekkai stop {name}, or rm -f)"
                ));
                code = exit::SANDBOX_RUNNING;
                continue;
            }
            kill_all(&r);
            wait_supervisor(&r, Some(RECORD_WAIT));
        }
        sd.remove(entry)?;
        println!("{name}");
    }
    Ok(code)
}

/// `kekkai cleanup`'s part: removes the entries of sandboxes whose supervisor is gone without
/// recording an end. Returns what it removed.
pub(crate) fn remove_dead() -> Vec<String> {
    let Ok(sd) = state_dir() else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for name in sd.names() {
        let Ok((entry, r)) = find(&sd, &name) else {
            continue;
        };
        if r.status() == Status::Dead && sd.remove(entry).is_ok() {
            removed.push(name);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::parse_signal;

    /// Names as kill(1) takes them, real-time ones included, become raw numbers; glibc's own
    /// 32 and 33 and anything outside 1..=SIGRTMAX are refused.
    #[rstest]
    #[case("TERM", Some(libc::SIGTERM))]
    #[case("sigterm", Some(libc::SIGTERM))]
    #[case("KILL", Some(libc::SIGKILL))]
    #[case("9", Some(libc::SIGKILL))]
    #[case("RTMIN", Some(libc::SIGRTMIN()))]
    #[case("rtmin+3", Some(libc::SIGRTMIN() + 3))]
    #[case("SIGRTMIN+3", Some(libc::SIGRTMIN() + 3))]
    #[case("RTMAX", Some(libc::SIGRTMAX()))]
    #[case("RTMAX-1", Some(libc::SIGRTMAX() - 1))]
    #[case("37", Some(37))]
    #[case("64", Some(64))]
    #[case("RTMIN+31", None)]
    #[case("RTMAX-31", None)]
    #[case("RTMIN-1", None)]
    #[case("RTMAX+1", None)]
    #[case("RTMIN+", None)]
    #[case("RTMIN3", None)]
    #[case("RTMIN+x", None)]
    #[case("0", None)]
    #[case("32", None)]
    #[case("33", None)]
    #[case("65", None)]
    #[case("-1", None)]
    #[case("FOO", None)]
    #[case("", None)]
    fn signals_by_name_and_number(#[case] arg: &str, #[case] want: Option<i32>) {
        assert_eq!(parse_signal(arg), want, "{arg}");
    }
}
