//! `images`, `tag`, `rmi`, `image prune`.

use std::io::Write;

use super::{CommandError, Env, out_err};
use crate::format::{human_size, since, table};
use crate::reference::ImageRef;
use crate::store::{ImageRecord, ImageStore, RemoveEvent, StoreError};

/// `bay images` flags.
#[derive(Debug, Clone, Default)]
pub struct ImagesOptions {
    /// `-a`: include intermediate images (bay has none, so all images are shown either way).
    pub all: bool,
    /// `--digests`.
    pub digests: bool,
    /// `-q`: IDs only.
    pub quiet: bool,
    /// `--no-trunc`.
    pub no_trunc: bool,
    /// `REPOSITORY[:TAG]` filter.
    pub filter: Option<String>,
}

fn short_id(rec: &ImageRecord, no_trunc: bool) -> String {
    if no_trunc {
        rec.id.to_string()
    } else {
        rec.id.hex()[..12].to_owned()
    }
}

/// `bay images`.
pub fn images(env: &Env, opts: &ImagesOptions, out: &mut dyn Write) -> Result<(), CommandError> {
    let store = env.store()?;
    let ix = store.read_index()?;
    let (frepo, ftag) = match &opts.filter {
        Some(f) => match f.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((r, t)) => (Some(r.to_owned()), Some(t.to_owned())),
            None => (Some(f.clone()), None),
        },
        None => (None, None),
    };
    let mut recs: Vec<&ImageRecord> = ix.images.values().collect();
    recs.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    let mut rows = vec![];
    let mut header = vec!["REPOSITORY".to_owned(), "TAG".to_owned()];
    if opts.digests {
        header.push("DIGEST".to_owned());
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"].map(str::to_owned));
    rows.push(header);
    let mut ids = Vec::new();
    for rec in recs {
        let created = since(rec.created.as_deref().and_then(|c| {
            chrono::DateTime::parse_from_rfc3339(c)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc))
        }));
        let mut names: Vec<(String, String)> = ix
            .tags_of(&rec.id)
            .into_iter()
            .filter_map(|t| {
                t.rsplit_once(':')
                    .map(|(r, t)| (r.to_owned(), t.to_owned()))
            })
            .collect();
        if names.is_empty() {
            names = rec
                .repo_digests
                .iter()
                .filter_map(|rd| {
                    rd.split_once('@')
                        .map(|(r, _)| (r.to_owned(), "<none>".to_owned()))
                })
                .collect();
            names.dedup();
        }
        if names.is_empty() {
            names.push(("<none>".to_owned(), "<none>".to_owned()));
        }
        for (repo, tag) in names {
            if frepo.as_ref().is_some_and(|f| *f != repo)
                || ftag.as_ref().is_some_and(|f| *f != tag)
            {
                continue;
            }
            ids.push(short_id(rec, opts.no_trunc));
            let mut row = vec![repo.clone(), tag];
            if opts.digests {
                let prefix = format!("{repo}@");
                row.push(
                    rec.repo_digests
                        .iter()
                        .find_map(|rd| rd.strip_prefix(&prefix))
                        .unwrap_or("<none>")
                        .to_owned(),
                );
            }
            row.extend([
                short_id(rec, opts.no_trunc),
                created.clone(),
                human_size(rec.size),
            ]);
            rows.push(row);
        }
    }
    if opts.quiet {
        for id in ids {
            writeln!(out, "{id}").map_err(out_err)?;
        }
        return Ok(());
    }
    out.write_all(table(&rows).as_bytes()).map_err(out_err)
}

/// `bay tag SOURCE TARGET`.
pub fn tag(env: &Env, source: &str, target: &str) -> Result<(), CommandError> {
    let dst = ImageRef::parse(target)?;
    if dst.digest().is_some() {
        return Err(CommandError::TagDigest);
    }
    let store = env.store()?;
    store.update(|ix| {
        let id = ix.lookup(source).map_err(StoreError::from)?;
        if let Some(t) = dst.tag_or_default() {
            ix.set_tag(&dst.repository(), t.as_str(), &id);
        }
        Ok::<_, CommandError>(())
    })
}

fn print_events(
    events: &[RemoveEvent],
    out: &mut dyn Write,
    lower: bool,
) -> Result<(), CommandError> {
    for e in events {
        let line = match e {
            RemoveEvent::Untagged(n) => {
                format!("{}: {n}", if lower { "untagged" } else { "Untagged" })
            }
            RemoveEvent::Deleted(d) => {
                format!("{}: {d}", if lower { "deleted" } else { "Deleted" })
            }
        };
        writeln!(out, "{line}").map_err(out_err)?;
    }
    Ok(())
}

/// `bay rmi [-f] IMAGE…`: errors per image go to `err`, as docker prints them.
pub fn rmi(
    env: &Env,
    names: &[String],
    force: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let store = env.store()?;
    let mut failed = 0;
    for n in names {
        let r = store.update(|ix| {
            let ev = store.remove(ix, n, force, env.users.as_ref())?;
            if ev.iter().any(|e| matches!(e, RemoveEvent::Deleted(_))) {
                store.sweep(ix)?;
            }
            Ok::<_, StoreError>(ev)
        });
        match r {
            Ok(ev) => print_events(&ev, out, false)?,
            Err(e) => {
                failed += 1;
                writeln!(err, "Error response from daemon: {e}").map_err(out_err)?;
            }
        }
    }
    if failed > 0 {
        return Err(CommandError::Partial { failed });
    }
    Ok(())
}

/// `bay image prune [-a]` (confirmation is the caller's job).
pub fn prune(env: &Env, all: bool, out: &mut dyn Write) -> Result<(), CommandError> {
    let store: ImageStore = env.store()?;
    let (events, reclaimed) = store.update(|ix| {
        let victims: Vec<_> = ix
            .images
            .keys()
            .filter(|id| env.users.users_of(id).is_empty() && (all || ix.tags_of(id).is_empty()))
            .cloned()
            .collect();
        let mut events = Vec::new();
        for id in victims {
            for t in ix.tags_of(&id) {
                if let Some((r, tg)) = t.rsplit_once(':') {
                    ix.remove_tag(r, tg);
                }
                events.push(RemoveEvent::Untagged(t));
            }
            if let Some(rec) = ix.images.remove(&id) {
                events.extend(rec.repo_digests.into_iter().map(RemoveEvent::Untagged));
            }
            events.push(RemoveEvent::Deleted(id));
        }
        let reclaimed = store.sweep(ix)?.unwrap_or(0);
        Ok::<_, StoreError>((events, reclaimed))
    })?;
    if !events.is_empty() {
        writeln!(out, "Deleted Images:").map_err(out_err)?;
        print_events(&events, out, true)?;
        writeln!(out).map_err(out_err)?;
    }
    writeln!(out, "Total reclaimed space: {}", human_size(reclaimed)).map_err(out_err)
}
