//! What both cgroup versions share: the control files (written with the policy key that asked
//! for the value, the process list, flat-keyed counters), the CPU period, how long teardown
//! waits, and what the counters recorded. A leaf: `mod.rs`, `v1.rs` and `v2.rs` use it, it uses
//! none of them.

use std::path::Path;

use serde::Serialize;

use crate::launch::error::StepError;
use crate::plan::steps::Step;
use crate::policy::KeyPath;

/// What the cgroups saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CgroupStats {
    /// The OOM killer killed something.
    pub oom_kills: u64,
    /// fork/clone failed at the pids limit.
    pub pids_limit_hits: u64,
    /// Peak memory use in bytes, where known.
    pub peak_memory: Option<u64>,
}

/// How long teardown waits for killed processes to be gone before it gives up removing the
/// cgroup (a process stuck in the kernel; the leftover is reported).
pub const KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The CPU period kekkai uses for quotas on both versions, in microseconds.
pub const PERIOD_US: u64 = 100_000;

/// A small kernel-made text file (`/proc/self/cgroup`, a cgroup control file), read in one
/// go: `fs::read_to_string` asks for the size first (0 for these files) and then reads in
/// doubling steps from 32 bytes, six system calls or more where two do.
pub(crate) fn read_small(path: &Path, capacity: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(capacity);
    std::fs::File::open(path)?.read_to_end(&mut buf)?;
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// A kernel-made file whose whole text the kernel makes at once (a cgroup control file such
/// as `pids.events` or `memory.oom_control`, /proc/PID/stat: one `show` of a seq_file): one
/// read into a buffer larger than the text returns all of it, so a read that leaves room is
/// the end and the read that would return 0 is not made (open, read, close: three calls
/// where [`read_small`] makes four). A read that fills the buffer goes on to the end. Not for
/// files made record by record (mountinfo, cgroup.procs): a read of those stops at a page.
pub(crate) fn read_whole(path: &Path, capacity: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; capacity.max(1)];
    let n = loop {
        match file.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => break r?,
        }
    };
    buf.truncate(n);
    if n == capacity.max(1) {
        file.read_to_end(&mut buf)?;
    }
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The processes listed in a cgroup (`cgroup.procs`, the same file on both versions).
pub(super) fn listed(dir: &Path) -> Vec<nix::unistd::Pid> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .map(nix::unistd::Pid::from_raw)
        .collect()
}

/// SIGKILL to every process listed in the cgroup: v1's teardown, and v2's where cgroup.kill
/// is missing.
pub fn kill_listed(dir: &Path) {
    for pid in listed(dir) {
        // Already gone is fine.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
}

/// The number after `name` in a flat-keyed cgroup file (`memory.events`: `oom_kill 3`).
pub(super) fn field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

/// Writes a cgroup control file, naming it in the error.
pub(super) fn write_file(
    dir: &Path,
    file: &str,
    value: &str,
    key: Option<&KeyPath>,
) -> Result<(), StepError> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|e| {
        let err = StepError::sys(
            Step::Plan,
            format!("write({:?}, {value:?})", path),
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        );
        match key {
            Some(k) => err.key(k),
            None => err,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// A temporary file holding a text, removed on drop.
    struct Temp(std::path::PathBuf);

    impl Temp {
        fn with(text: &str) -> Temp {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p =
                std::env::temp_dir().join(format!("kekkai-read-whole-{}-{n}", std::process::id()));
            std::fs::write(&p, text).unwrap();
            Temp(p)
        }
    }

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Shorter than the buffer (one read), as long (a read more), longer (read to the end).
    #[rstest]
    #[case::shorter(10, 64)]
    #[case::as_long(64, 64)]
    #[case::longer(300, 64)]
    #[case::empty(0, 64)]
    #[case::no_capacity(5, 0)]
    fn read_whole_reads_the_whole_text(#[case] len: usize, #[case] capacity: usize) {
        let text: String = "populated 0\n".chars().cycle().take(len).collect();
        let f = Temp::with(&text);
        assert_eq!(read_whole(&f.0, capacity).unwrap(), text);
    }

    #[test]
    fn read_whole_names_a_missing_file() {
        let e = read_whole(Path::new("/nonexistent/kekkai/pids.events"), 64).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }
}
