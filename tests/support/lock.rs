//! Taking turns on the machine-wide state, across threads, test binaries and checkouts.
//!
//! Sandboxes are machine-wide: each one has cgroups next to the test's own, and a killed one
//! leaves its cgroup for the next launch to remove. A test that measures what launches leave
//! behind (residue, cgroups) would count another test's live sandbox as something left
//! behind — another test of the same binary (a thread), of another test binary, or of another
//! checkout's suite running on the same machine at the same time.
//!
//! So every [`World`](super::World) holds a *shared* lock for as long as it lives (its sandboxes
//! run meanwhile), and a test that measures takes its [`turn`] first: an *exclusive* lock, held
//! while nobody else holds a world. The lock is `flock(2)` on a file in the system's temp
//! directory: it is per open file description, so threads of one process wait for each other
//! just as processes do, and it goes with the process that held it (a killed test leaves no
//! stale lock). A second file, the gate, lets a waiting turn in before new worlds: without it,
//! two busy suites could keep the shared lock held forever.
//!
//! Within one thread the locks nest: a test's second world shares its first one's lock, and a
//! world made during the test's turn takes none (the turn already excludes everyone else).
//! Taking the turn while holding a world would wait for itself, so it panics instead.

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The lock file, and the gate a waiting turn holds so no new world slips in before it.
fn lock_file(name: &str) -> File {
    let path: PathBuf = std::env::temp_dir().join(name);
    // Read-only is enough for flock; O_NOFOLLOW: the temp directory is everyone's.
    std::fs::OpenOptions::new()
        .read(true)
        .write(false)
        .create(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .or_else(|_| {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
        })
        .unwrap_or_else(|e| panic!("the test lock {}: {e}", path.display()))
}

fn flock(file: File, how: FlockArg) -> Flock<File> {
    let mut file = file;
    loop {
        match Flock::lock(file, how) {
            Ok(locked) => return locked,
            Err((f, Errno::EINTR)) => file = f,
            Err((_, e)) => panic!("flock on the test lock: {e}"),
        }
    }
}

/// Could another process take the main lock `how` right now? (Tries on a file description of
/// its own, as another process would, and lets go at once.)
pub fn free_for(how: FlockArg) -> bool {
    let nonblocking = match how {
        FlockArg::LockShared => FlockArg::LockSharedNonblock,
        _ => FlockArg::LockExclusiveNonblock,
    };
    match Flock::lock(lock_file("kekkai-tests.lock"), nonblocking) {
        Ok(_) => true,
        Err((_, Errno::EWOULDBLOCK)) => false,
        Err((_, e)) => panic!("flock on the test lock: {e}"),
    }
}

/// Takes the main lock `how`, passing the gate first (a turn keeps it while it waits).
fn take(how: FlockArg) -> Flock<File> {
    let gate = flock(lock_file("kekkai-tests.gate"), FlockArg::LockExclusive);
    let main = flock(lock_file("kekkai-tests.lock"), how);
    drop(gate);
    main
}

/// What this thread holds.
enum Held {
    Nothing,
    /// The shared lock, for this many live worlds.
    Shared(Flock<File>, usize),
    /// The turn.
    Turn,
}

thread_local! {
    static HELD: RefCell<Held> = const { RefCell::new(Held::Nothing) };
}

/// The test's turn: nobody else (no thread, no other test process on this machine) has a world
/// until it is dropped. Take it before making the test's world.
#[must_use = "the turn ends when this is dropped"]
pub struct Turn(Option<Flock<File>>);

/// Waits until no other test holds a world, and keeps everyone else's worlds waiting until the
/// returned [`Turn`] is dropped. For tests that measure machine-wide state (residue, cgroups).
pub fn turn() -> Turn {
    HELD.with(|h| match &*h.borrow() {
        Held::Nothing => {}
        Held::Shared(..) => panic!("take the turn before making a world: it would wait for itself"),
        Held::Turn => panic!("this test already has its turn"),
    });
    let lock = take(FlockArg::LockExclusive);
    HELD.with(|h| *h.borrow_mut() = Held::Turn);
    Turn(Some(lock))
}

impl Drop for Turn {
    fn drop(&mut self) {
        HELD.with(|h| *h.borrow_mut() = Held::Nothing);
        drop(self.0.take());
    }
}

/// A world's share of the machine: held while the world (and its sandboxes) lives.
pub struct Share(());

/// Takes a share (waiting while some test has its turn), or joins this thread's.
pub fn share() -> Share {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        match &mut *h {
            Held::Nothing => *h = Held::Shared(take(FlockArg::LockShared), 1),
            Held::Shared(_, n) => *n += 1,
            Held::Turn => {}
        }
    });
    Share(())
}

impl Drop for Share {
    fn drop(&mut self) {
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if let Held::Shared(_, n) = &mut *h {
                *n -= 1;
                if *n == 0 {
                    // Drops the lock.
                    *h = Held::Nothing;
                }
            }
        });
    }
}
