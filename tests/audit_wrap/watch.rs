//! Watching directories for changes while a test's program runs.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Watches directories (and every directory made in them) for changes, recording the paths.
pub struct Watcher {
    pub inotify: nix::sys::inotify::Inotify,
    /// Watch → (path as the sandbox names it, path to reach it from here).
    pub dirs: BTreeMap<nix::sys::inotify::WatchDescriptor, (String, PathBuf)>,
    pub seen: Vec<String>,
}

impl Watcher {
    const MASK: nix::sys::inotify::AddWatchFlags =
        nix::sys::inotify::AddWatchFlags::from_bits_truncate(
            libc::IN_CREATE
                | libc::IN_DELETE
                | libc::IN_MODIFY
                | libc::IN_ATTRIB
                | libc::IN_MOVED_FROM
                | libc::IN_MOVED_TO
                | libc::IN_CLOSE_WRITE,
        );

    pub fn new() -> Watcher {
        Watcher {
            inotify: nix::sys::inotify::Inotify::init(nix::sys::inotify::InitFlags::IN_NONBLOCK)
                .unwrap(),
            dirs: BTreeMap::new(),
            seen: Vec::new(),
        }
    }

    pub fn add(&mut self, name: String, reach: PathBuf) {
        if let Ok(wd) = self.inotify.add_watch(&reach, Self::MASK) {
            self.dirs.insert(wd, (name, reach));
        }
    }

    /// Reads what happened so far; new directories are watched too.
    pub fn drain(&mut self) {
        while let Ok(events) = self.inotify.read_events() {
            if events.is_empty() {
                break;
            }
            for e in events {
                use nix::sys::inotify::AddWatchFlags as F;
                // The namespace's end: its tmpfs mounts go away.
                if e.mask.intersects(F::IN_IGNORED | F::IN_UNMOUNT) {
                    continue;
                }
                let Some((dir, reach)) = self.dirs.get(&e.wd).cloned() else {
                    continue;
                };
                let name = e
                    .name
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let path = format!("{dir}/{name}");
                self.seen.push(format!("{path} {:?}", e.mask));
                if e.mask.contains(nix::sys::inotify::AddWatchFlags::IN_CREATE)
                    && e.mask.contains(nix::sys::inotify::AddWatchFlags::IN_ISDIR)
                {
                    self.add(path, reach.join(&name));
                }
            }
        }
    }
}
