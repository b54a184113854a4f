//! `volume create|ls|rm|inspect|prune` over the runtime's
//! [`VolumeStore`], with docker's output and messages. A volume any
//! container uses (running or not) is never removed.

use std::collections::BTreeMap;
use std::io::Write;

use bay_runtime::volume::{Volume, VolumeError, VolumeName, VolumeStore};
use chrono::{DateTime, Utc};

use super::{CommandError, Env, out_err};
use crate::template::Template;

fn store(env: &Env) -> VolumeStore {
    VolumeStore::new(&super::runtime_root(env))
}

/// The containers using `vol` (an absent runtime has none).
fn users(env: &Env, store: &VolumeStore, vol: &Volume) -> Result<Vec<String>, CommandError> {
    let root = super::runtime_root(env);
    if !root.join("containers").is_dir() {
        return Ok(Vec::new());
    }
    let rt = bay_runtime::Runtime::open(root)?;
    Ok(store.users(&rt, vol)?)
}

/// `volume create [--label K=V] [NAME]`: prints the name.
pub fn volume_create(
    env: &Env,
    name: Option<&str>,
    driver: &str,
    labels: &[String],
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    if driver != "local" {
        return Err(CommandError::VolumeDriver {
            driver: driver.to_owned(),
        });
    }
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (l.clone(), String::new()),
        })
        .collect();
    let name = name.map(VolumeName::parse).transpose()?;
    let (vol, _) = store(env).create(name.as_ref(), labels)?;
    writeln!(out, "{}", vol.name).map_err(out_err)
}

/// `volume ls [-q]`.
pub fn volume_ls(env: &Env, quiet: bool, out: &mut dyn Write) -> Result<(), CommandError> {
    let vols = store(env).list()?;
    if quiet {
        for v in vols {
            writeln!(out, "{}", v.name).map_err(out_err)?;
        }
        return Ok(());
    }
    let mut rows = vec![vec!["DRIVER".to_owned(), "VOLUME NAME".to_owned()]];
    rows.extend(
        vols.into_iter()
            .map(|v| vec!["local".to_owned(), v.name.to_string()]),
    );
    write!(out, "{}", crate::format::table(&rows)).map_err(out_err)
}

/// `volume rm [-f] NAME...`: removes what it can and reports each failure
/// on `err` (docker goes on with the rest); `Ok(false)` when any failed.
/// `-f` only silences missing volumes: one in use is never removed.
pub fn volume_rm(
    env: &Env,
    names: &[String],
    force: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<bool, CommandError> {
    let store = store(env);
    let mut ok = true;
    for n in names {
        let result = match store.get(n)? {
            None if force => continue,
            None => Err(VolumeError::NotFound { name: n.clone() }.into()),
            Some(vol) => match users(env, &store, &vol)? {
                u if u.is_empty() => store.remove(n).map(|_| ()).map_err(CommandError::from),
                containers => Err(VolumeError::InUse {
                    name: n.clone(),
                    containers,
                }
                .into()),
            },
        };
        match result {
            Ok(()) => writeln!(out, "{n}").map_err(out_err)?,
            Err(e) => {
                ok = false;
                writeln!(err, "Error response from daemon: {e}").map_err(out_err)?;
            }
        }
    }
    Ok(ok)
}

/// docker's `volume inspect` object.
fn inspect_value(v: &Volume) -> serde_json::Value {
    let created = i64::try_from(v.created)
        .ok()
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let mut labels = v.labels.clone();
    if v.anonymous {
        labels.insert("com.docker.volume.anonymous".to_owned(), String::new());
    }
    serde_json::json!({
        "CreatedAt": created,
        "Driver": "local",
        "Labels": labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name.as_str(),
        "Options": null,
        "Scope": "local",
    })
}

/// `volume inspect [-f FORMAT] NAME...`; `Ok(false)` when any is missing
/// (the others are still printed).
pub fn volume_inspect(
    env: &Env,
    names: &[String],
    format: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<bool, CommandError> {
    let tmpl = format.map(Template::parse).transpose()?;
    let store = store(env);
    let mut found = Vec::new();
    let mut ok = true;
    for n in names {
        match store.get(n)? {
            Some(v) => found.push(inspect_value(&v)),
            None => {
                ok = false;
                writeln!(err, "Error: No such volume: {n}").map_err(out_err)?;
            }
        }
    }
    match tmpl {
        Some(t) => {
            for v in &found {
                writeln!(out, "{}", t.render(v)?).map_err(out_err)?;
            }
        }
        None => {
            let text = serde_json::to_string_pretty(&found).map_err(|e| out_err(e.into()))?;
            writeln!(out, "{text}").map_err(out_err)?;
        }
    }
    Ok(ok)
}

/// `volume prune [-a]`: removes unused volumes (only anonymous ones
/// without `-a`, as docker ≥ 23) and prints what went and the space freed.
pub fn volume_prune(env: &Env, all: bool, out: &mut dyn Write) -> Result<(), CommandError> {
    let store = store(env);
    let mut deleted = Vec::new();
    let mut reclaimed = 0;
    for v in store.list()? {
        if !(all || v.anonymous) || !users(env, &store, &v)?.is_empty() {
            continue;
        }
        reclaimed += store.size(&v);
        store.remove(v.name.as_str())?;
        deleted.push(v.name.to_string());
    }
    if !deleted.is_empty() {
        writeln!(out, "Deleted Volumes:").map_err(out_err)?;
        for d in &deleted {
            writeln!(out, "{d}").map_err(out_err)?;
        }
        writeln!(out).map_err(out_err)?;
    }
    writeln!(
        out,
        "Total reclaimed space: {}",
        crate::format::human_size(reclaimed)
    )
    .map_err(out_err)
}
