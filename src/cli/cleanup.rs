//! `kekkai cleanup`: remove the cgroups left behind by sandboxes whose supervisor was killed,
//! below kekkai's own cgroup in each hierarchy, and their entries in the state directory.

use kekkai::error::Error;

pub(crate) fn cleanup() -> Result<i32, Error> {
    let h = kekkai::launch::cgroup::Hierarchies::read();
    let mut dirs: Vec<std::path::PathBuf> = h.own_v2().into_iter().collect();
    for (ctrls, _) in &h.v1_mounts {
        if let Some(first) = ctrls.first() {
            if let Some((_, own)) = h.own_v1(first) {
                dirs.push(own);
            }
        }
    }
    let mut n = 0;
    for d in dirs {
        for removed in kekkai::launch::cgroup::remove_stale(&d) {
            println!("removed {}", removed.display());
            n += 1;
        }
    }
    for name in super::engine::remove_dead() {
        println!("removed the state of {name} (its supervisor was killed)");
        n += 1;
    }
    if n == 0 {
        println!("nothing to clean up");
    }
    Ok(0)
}
