//! The filesystem: kekkai's fresh root and its mounts (launch steps 4 to 6: the overlay, the
//! mounts in policy order, pivot_root) as systemd's hardening of the host's own tree in place
//! (ProtectSystem=, ProtectHome=, PrivateTmp=, TemporaryFileSystem=, Bind*Paths=,
//! InaccessiblePaths=, ProtectProc=, PrivateDevices=), and the working directory (step 7).

use std::path::Path;

use super::directive::{Directive, Unit, Value, bytes, path_word};
use crate::plan::landlock::access;
use crate::plan::{MountKind, Plan};

pub(super) fn write(plan: &Plan, o: &mut Unit) {
    o.heading("filesystem");
    let lowers = &plan.rootfs.lowers;
    let host_root = lowers.len() == 1 && lowers.iter().all(|l| l == Path::new("/"));
    if !host_root {
        match lowers.as_slice() {
            [one] => match path_word(one, false) {
                Some(w) => o.set(Directive::RootDirectory, Value::Text(w)),
                None => o.note(format!(
                    "The root is {}, a path systemd can't be given.",
                    one.display()
                )),
            },
            _ => {
                let list: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
                o.note(format!(
                    "kekkai stacks the layers {} (top first) into the root; systemd has no \
                     overlay of several trees: kekkai only.",
                    list.join(", ")
                ));
            }
        }
    }
    o.set(Directive::ProtectSystem, Value::Word("strict"));
    if plan.rootfs.writable {
        o.note(format!(
            "The policy's root is writable, with every write thrown away at exit (a {} tmpfs \
             layer). systemd has no throw-away layer over the host's tree, so the host stays \
             read-only here: add ReadWritePaths= or TemporaryFileSystem= for what the program \
             must write.",
            bytes(plan.rootfs.size)
        ));
    }
    o.note(
        "kekkai builds a fresh root: a read-only overlay per top-level directory, the host's \
         /proc, /sys and /dev replaced, and no way back to the host's tree after pivot_root. \
         systemd hardens the host's own tree in place: kekkai only.",
    );
    mounts(plan, o);
    o.set(Directive::PrivateMounts, Value::Yes);
    order_note(plan, o);
    if *plan.cwd != Path::new("/") {
        // WorkingDirectory= takes the rest of the line, without unescaping.
        let cwd = path_word(&plan.cwd, false).filter(|w| !w.contains('\\'));
        match cwd {
            Some(c) => o.set(Directive::WorkingDirectory, Value::Text(c)),
            None => o.note(format!(
                "The working directory {} can't be written in a unit file.",
                plan.cwd.display()
            )),
        }
    }
}

/// The policy's mounts, in its order, and /proc and /dev when it mounts none.
fn mounts(plan: &Plan, o: &mut Unit) {
    let is = |kind: fn(&MountKind) -> bool, target: &str| {
        plan.mounts
            .iter()
            .any(|m| kind(&m.kind) && m.target == Path::new(target))
    };
    let hide = |k: &MountKind| matches!(k, MountKind::Hide);
    let tmpfs = |k: &MountKind| matches!(k, MountKind::Tmpfs { .. });
    let covered = |path: &str| {
        plan.mounts.iter().any(|m| {
            matches!(m.kind, MountKind::Hide | MountKind::Tmpfs { .. })
                && Path::new(path).starts_with(&m.target)
        })
    };
    let protect_home = is(hide, "/home") && is(hide, "/root");
    if protect_home {
        if covered("/run/user") {
            o.set(Directive::ProtectHome, Value::Word("tmpfs"));
        } else {
            o.set_why(
                Directive::ProtectHome,
                Value::Word("tmpfs"),
                "ProtectHome= also hides /run/user, which the policy leaves visible.",
            );
        }
    }
    let notify_note = "/run holds systemd's notify socket: a Type=notify unit needs \
                       BindReadOnlyPaths=/run/systemd/notify as well.";
    let mut proc = false;
    let mut dev = false;
    for m in &plan.mounts {
        let target = &m.target;
        if m.protocol {
            o.note(format!(
                "kekkai binds {} for the caller's systemd protocols ({}); under systemd the \
                 unit gets its own.",
                target.display(),
                m.key
            ));
            continue;
        }
        match &m.kind {
            MountKind::Hide => {
                if protect_home && (target == Path::new("/home") || target == Path::new("/root")) {
                    continue;
                }
                match path_word(target, false) {
                    Some(w) => o.set(Directive::InaccessiblePaths, Value::Text(format!("-{w}"))),
                    None => unexpressible(o, m.key.to_string(), target),
                }
                if target == Path::new("/run") {
                    o.note(notify_note);
                }
            }
            MountKind::Tmpfs { size, mode, exec } if target == Path::new("/tmp") => {
                o.set_why(
                    Directive::PrivateTmp,
                    Value::Yes,
                    format!(
                        "kekkai's /tmp is a {} tmpfs (mode {mode:04o}); PrivateTmp= has no size: \
                         TemporaryFileSystem=/tmp:size={},mode={mode:04o} would have one.",
                        bytes(*size),
                        bytes(*size)
                    ),
                );
                if !is(tmpfs, "/var/tmp") {
                    o.note("PrivateTmp= also gives the unit a private, writable /var/tmp.");
                }
                if !exec {
                    o.set(Directive::NoExecPaths, Value::Text("/tmp".into()));
                }
            }
            MountKind::Tmpfs { size, mode, exec } => {
                let word = path_word(target, false).filter(|_| {
                    // The path and the options are split at the first colon.
                    !target.as_os_str().as_encoded_bytes().contains(&b':')
                });
                match word {
                    Some(w) => {
                        let noexec = if *exec { "" } else { ",noexec" };
                        o.set(
                            Directive::TemporaryFileSystem,
                            Value::Text(format!(
                                "{w}:size={},mode={mode:04o}{noexec}",
                                bytes(*size)
                            )),
                        );
                    }
                    None => unexpressible(o, m.key.to_string(), target),
                }
                if target == Path::new("/run") {
                    o.note(notify_note);
                }
            }
            MountKind::Bind {
                source,
                writable,
                exec,
                ..
            } => {
                match (path_word(source, true), path_word(target, true)) {
                    (Some(s), Some(t)) => {
                        let directive = if *writable {
                            Directive::BindPaths
                        } else {
                            Directive::BindReadOnlyPaths
                        };
                        o.set(directive, Value::Text(format!("{s}:{t}")));
                    }
                    _ => unexpressible(o, m.key.to_string(), target),
                }
                if !exec {
                    if let Some(t) = path_word(target, false) {
                        o.set(Directive::NoExecPaths, Value::Text(t));
                    }
                }
                if source != target {
                    o.note(format!(
                        "systemd creates the mount point {} on the host if it is missing.",
                        target.display()
                    ));
                }
            }
            MountKind::Proc => {
                if !proc {
                    o.set_why(
                        Directive::ProtectProc,
                        Value::Word("invisible"),
                        "kekkai mounts a fresh /proc in its own PID namespace: only the \
                         sandbox's processes. ProtectProc=invisible hides other users' \
                         processes; newer systemd versions offer PrivatePIDs=yes for a PID \
                         namespace.",
                    );
                }
                proc = true;
            }
            MountKind::Dev => {
                if !dev {
                    o.set(Directive::PrivateDevices, Value::Yes);
                    if target == Path::new("/dev") {
                        dev_shm(plan, o);
                    }
                }
                dev = true;
            }
            MountKind::Mqueue => o.note(format!(
                "kekkai mounts a message-queue filesystem at {}; systemd mounts none \
                 (PrivateIPC= gives the namespace): kekkai only.",
                target.display()
            )),
            MountKind::File { .. } => o.note(format!(
                "kekkai writes {} for `network: user` ({}): kekkai only.",
                target.display(),
                m.key
            )),
        }
    }
    if !proc {
        o.set(Directive::ProtectProc, Value::Word("invisible"));
        o.set_why(
            Directive::ProcSubset,
            Value::Word("pid"),
            "The policy mounts no /proc at all; systemd can only shrink the host's.",
        );
    }
    if !dev {
        o.set_why(
            Directive::PrivateDevices,
            Value::Yes,
            "The policy mounts no /dev at all; PrivateDevices= still gives null, zero, random \
             and the like.",
        );
    }
}

/// PrivateDevices= bind-mounts the host's own /dev/shm into the unit's /dev, writable and shared
/// with every process on the host (systemd's namespace.c: `mount("/dev/shm", devshm, NULL,
/// MS_BIND, NULL)`, and the read-only /dev is "not submounts like /dev/shm"). kekkai's is a fresh
/// tmpfs: a tmpfs over it gives the unit one too, without exec where Landlock gives none.
fn dev_shm(plan: &Plan, o: &mut Unit) {
    let shm = Path::new("/dev/shm");
    let landlock_noexec = plan.landlock.enabled
        && !crate::plan::landlock::allows(&plan.landlock, shm, access::EXECUTE);
    let noexec = if landlock_noexec { ",noexec" } else { "" };
    o.set_why(
        Directive::TemporaryFileSystem,
        Value::Text(format!(
            "/dev/shm:size={},mode=1777,nosuid{noexec}",
            bytes(crate::plan::fs::DEV_SHM_BYTES)
        )),
        format!(
            "PrivateDevices= alone binds the host's /dev/shm, writable and shared with every \
             host process; kekkai's /dev/shm is a private {} tmpfs{}.",
            bytes(crate::plan::fs::DEV_SHM_BYTES),
            if landlock_noexec {
                " where Landlock allows no execution"
            } else {
                ""
            }
        ),
    );
}

/// kekkai mounts in policy order; systemd sorts by path, so a later mount over a deeper earlier
/// one ends up underneath instead of on top.
fn order_note(plan: &Plan, o: &mut Unit) {
    let mounts: Vec<_> = plan.mounts.iter().filter(|m| !m.protocol).collect();
    for (i, earlier) in mounts.iter().enumerate() {
        for later in mounts.iter().skip(i + 1) {
            if earlier.target.starts_with(&later.target) {
                o.note(format!(
                    "Order: {} ({}) covers {} ({}) in kekkai; systemd orders mounts by path and \
                     puts the deeper one on top.",
                    later.target.display(),
                    later.key,
                    earlier.target.display(),
                    earlier.key
                ));
            }
        }
    }
}

fn unexpressible(o: &mut Unit, key: String, path: &Path) {
    o.note(format!(
        "{key}: {} can't be written in a unit file (control characters, non-UTF-8 or a colon \
         where systemd splits): kekkai only.",
        path.display()
    ));
}
