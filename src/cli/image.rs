//! `kekkai image import|pull|ls|inspect|rm|prune`: the caller's image store.
//!
//! Root's store is /var/lib/kekkai, anyone else's `$XDG_DATA_HOME/kekkai`
//! (~/.local/share/kekkai); `$KEKKAI_STORE` names another. `--json` prints what happened, or
//! `{"error": {"kind": …, "message": …}}`, on standard output (the kinds are stable names:
//! `absolute-path`, `digest-mismatch`, `in-use`, …).

use serde_json::json;

use kekkai::error::Error;
use kekkai::image::store::{self, Store};
use kekkai::image::{ImageError, Kind, import, reference::Reference};
use kekkai::log;

use super::{ImageArgs, ImageCmd, ImportOpts};

/// The caller's store: opened, created when `create`.
pub(crate) fn open_store(create: bool) -> Result<Store, ImageError> {
    let caller = kekkai::caller::Caller::current()
        .map_err(|e| ImageError::new(Kind::Store, kekkai::image::describe(&e)))?;
    let env = |k: &str| caller.env_var(k).map(str::to_owned);
    let path = store::default_path(caller.euid, &env, &caller.home);
    Store::open(&path, caller.euid, create)
}

fn options(o: &ImportOpts, name: Option<&str>) -> Result<import::Options, ImageError> {
    let max_size = match o.max_size.as_deref() {
        None => import::DEFAULT_MAX_SIZE,
        Some(s) => match kekkai::plan::units::parse_size(s) {
            Ok(kekkai::plan::units::Amount::Finite(n)) => n,
            Ok(_) => import::DEFAULT_MAX_SIZE,
            Err(e) => return Err(ImageError::new(Kind::Usage, format!("--max-size {s}: {e}"))),
        },
    };
    Ok(import::Options {
        name: name.map(str::to_owned),
        select: o.select.clone(),
        strip_setid: o.strip_setuid,
        max_size,
        max_entries: o.max_entries.unwrap_or(import::DEFAULT_MAX_ENTRIES),
    })
}

pub(crate) fn image(args: &ImageArgs) -> Result<i32, Error> {
    let json = args.json;
    match run(args) {
        Ok(code) => Ok(code),
        Err(e) if json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "error": { "kind": e.kind, "message": e.message }
                }))
                .unwrap_or_default()
            );
            log::error(&e.message);
            Ok(1)
        }
        Err(e) => Err(Error::Image(e)),
    }
}

fn say_imported(json: bool, what: &import::Imported) {
    if json {
        println!("{}", serde_json::to_string_pretty(what).unwrap_or_default());
        return;
    }
    let new = what.layers.iter().filter(|(_, n)| *n).count();
    println!(
        "{}  {} layer{} ({} new, {})",
        what.id,
        what.layers.len(),
        if what.layers.len() == 1 { "" } else { "s" },
        new,
        kekkai::explain::size(what.bytes)
    );
    for n in &what.names {
        println!("named {n}");
    }
    if what.names.is_empty() {
        println!(
            "no name: refer to it as {} (or import with --name)",
            what.id.get(..19).unwrap_or(&what.id)
        );
    }
    if what.stripped > 0 {
        log::warn(&format!(
            "dropped the setuid/setgid bits of {} file(s) (--strip-setuid)",
            what.stripped
        ));
    }
}

fn run(args: &ImageArgs) -> Result<i32, ImageError> {
    let json = args.json;
    match &args.cmd {
        ImageCmd::Import { path, name, opts } => {
            let store = open_store(true)?;
            let what = import::import(&store, path, &options(opts, name.as_deref())?)?;
            say_imported(json, &what);
            Ok(0)
        }
        #[cfg(feature = "pull")]
        ImageCmd::Pull {
            reference,
            name,
            insecure,
            user,
            opts,
        } => {
            let store = open_store(true)?;
            let credentials = match user {
                None => None,
                Some(u) => Some((
                    u.clone(),
                    std::env::var("KEKKAI_REGISTRY_PASSWORD").map_err(|_| {
                        ImageError::new(
                            Kind::Usage,
                            "--user needs the password in KEKKAI_REGISTRY_PASSWORD",
                        )
                    })?,
                )),
            };
            let what = kekkai::image::pull::pull(
                &store,
                reference,
                &options(opts, name.as_deref())?,
                &kekkai::image::pull::PullOptions {
                    insecure: *insecure,
                    credentials,
                },
            )?;
            say_imported(json, &what);
            Ok(0)
        }
        ImageCmd::Ls => {
            let images = match open_store(false) {
                Ok(s) => s.list()?,
                Err(e) if e.kind == Kind::NotFound => Vec::new(),
                Err(e) => return Err(e),
            };
            if json {
                let v: Vec<_> = images
                    .iter()
                    .map(|i| {
                        json!({
                            "id": i.id.as_str(),
                            "names": i.names,
                            "layers": i.record.layers.len(),
                            "size": i.record.layers.iter().map(|l| l.size).sum::<u64>(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                return Ok(0);
            }
            println!("{:<40} {:<12} {:>6} {:>10}", "NAME", "ID", "LAYERS", "SIZE");
            for i in &images {
                let size = i.record.layers.iter().map(|l| l.size).sum::<u64>();
                let names = if i.names.is_empty() {
                    vec!["<none>".to_owned()]
                } else {
                    i.names.clone()
                };
                for n in names {
                    println!(
                        "{:<40} {:<12} {:>6} {:>10}",
                        n,
                        i.id.short(),
                        i.record.layers.len(),
                        kekkai::explain::size(size)
                    );
                }
            }
            Ok(0)
        }
        ImageCmd::Inspect { reference } => {
            let store = open_store(false)?;
            let id = store.resolve(&Reference::parse(reference)?)?;
            let img = store.image(&id)?;
            let layers: Vec<_> = img
                .record
                .layers
                .iter()
                .map(|l| {
                    let path = kekkai::image::digest::Digest::parse(&l.diff_id)
                        .map(|d| store.layer_path(&d).display().to_string())
                        .unwrap_or_default();
                    json!({ "diff_id": l.diff_id, "size": l.size, "path": path })
                })
                .collect();
            let v = json!({
                "id": img.id.as_str(),
                "names": img.names,
                "manifest": img.record.manifest,
                "source": img.record.source,
                "imported": img.record.imported,
                "platform": img.config.platform,
                "layers": layers,
                "config": img.config.defaults,
                "in_use": store.in_use(&id),
                "store": store.path(),
            });
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(0)
        }
        ImageCmd::Rm { references } => {
            let store = open_store(false)?;
            let _lock = store.lock(true)?;
            let mut gone = Vec::new();
            let mut untagged = Vec::new();
            for r in references {
                let reference = Reference::parse(r)?;
                let id = store.resolve(&reference)?;
                // A name of an image that has others only goes itself, as `docker rmi` does.
                if let Reference::Name(name) = &reference {
                    let others = store
                        .names()?
                        .into_iter()
                        .any(|(n, i)| i == id && &n != name);
                    if others {
                        store.remove_name(name)?;
                        untagged.push(name.clone());
                        if !json {
                            println!("untagged {name}");
                        }
                        continue;
                    }
                }
                store.remove_image(&id)?;
                gone.push(id.to_string());
                if !json {
                    println!("removed {r} ({})", id.short());
                }
            }
            let (_, layers, _) = store.collect(false)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "removed": gone,
                        "untagged": untagged,
                        "layers_removed": layers.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
                    }))
                    .unwrap_or_default()
                );
            } else if !layers.is_empty() {
                println!("removed {} layer(s) no image uses", layers.len());
            }
            Ok(0)
        }
        ImageCmd::Prune => {
            let store = match open_store(false) {
                Ok(s) => s,
                Err(e) if e.kind == Kind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            };
            let _lock = store.lock(true)?;
            let (images, layers, leftovers) = store.collect(true)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "images_removed": images.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
                        "layers_removed": layers.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
                        "leftovers_removed": leftovers,
                    }))
                    .unwrap_or_default()
                );
            } else {
                println!(
                    "removed {} unnamed image(s), {} unused layer(s), {} leftover(s) of interrupted imports",
                    images.len(),
                    layers.len(),
                    leftovers
                );
            }
            Ok(0)
        }
    }
}
