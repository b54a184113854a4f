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
    /// `REPOSITORY[:TAG]` argument.
    pub repository: Option<String>,
    /// `--filter` (`dangling=true|false`, `reference=PATTERN`).
    pub filters: Vec<String>,
    /// `--format` Go template over `.ID .Repository .Tag .Digest .CreatedSince .CreatedAt .Size`.
    pub format: Option<String>,
}

/// path.Match-style glob used by docker's `reference=` filter: `*` does not cross `/`.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pat[1..], s) || (!s.is_empty() && s[0] != b'/' && glob(pat, &s[1..]))
        }
        (Some(b'?'), Some(c)) if *c != b'/' => glob(&pat[1..], &s[1..]),
        (Some(p), Some(c)) if p == c => glob(&pat[1..], &s[1..]),
        _ => false,
    }
}

struct Filters {
    dangling: Option<bool>,
    references: Vec<String>,
}

fn parse_filters(filters: &[String]) -> Result<Filters, CommandError> {
    let mut f = Filters {
        dangling: None,
        references: Vec::new(),
    };
    for raw in filters {
        match raw.split_once('=') {
            Some(("dangling", v)) => {
                f.dangling = Some(match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(CommandError::BadFilter {
                            filter: raw.clone(),
                        });
                    }
                });
            }
            Some(("reference", v)) => f.references.push(v.to_owned()),
            _ => {
                return Err(CommandError::BadFilter {
                    filter: raw.clone(),
                });
            }
        }
    }
    Ok(f)
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
    let filters = parse_filters(&opts.filters)?;
    let tmpl = opts
        .format
        .as_deref()
        .map(crate::template::Template::parse)
        .transpose()?;
    let store = env.store()?;
    let ix = store.read_index()?;
    let (frepo, ftag) = match &opts.repository {
        Some(f) => match f.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((r, t)) => (Some(r.to_owned()), Some(t.to_owned())),
            None => (Some(f.clone()), None),
        },
        None => (None, None),
    };
    let mut recs: Vec<&ImageRecord> = ix.images.values().collect();
    recs.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for rec in recs {
        let tags = ix.tags_of(&rec.id);
        if filters.dangling.is_some_and(|d| d != tags.is_empty()) {
            continue;
        }
        let created_at = rec.created.as_deref().and_then(|c| {
            chrono::DateTime::parse_from_rfc3339(c)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc))
        });
        let mut names: Vec<(String, String)> = tags
            .iter()
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
            if !filters.references.is_empty()
                && !filters.references.iter().any(|p| {
                    glob(p.as_bytes(), repo.as_bytes())
                        || glob(p.as_bytes(), format!("{repo}:{tag}").as_bytes())
                })
            {
                continue;
            }
            let prefix = format!("{repo}@");
            let digest = rec
                .repo_digests
                .iter()
                .find_map(|rd| rd.strip_prefix(&prefix))
                .unwrap_or("<none>")
                .to_owned();
            rows.push(serde_json::json!({
                "ID": short_id(rec, opts.no_trunc),
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "CreatedSince": since(created_at),
                "CreatedAt": created_at.map(|t| t.format("%Y-%m-%d %H:%M:%S %z UTC").to_string()).unwrap_or_default(),
                "Size": human_size(rec.size),
            }));
        }
    }
    let field = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or_default().to_owned();
    if opts.quiet {
        for r in &rows {
            writeln!(out, "{}", field(r, "ID")).map_err(out_err)?;
        }
        return Ok(());
    }
    if let Some(t) = tmpl {
        for r in &rows {
            writeln!(out, "{}", t.render(r)?).map_err(out_err)?;
        }
        return Ok(());
    }
    let mut header = vec!["REPOSITORY".to_owned(), "TAG".to_owned()];
    if opts.digests {
        header.push("DIGEST".to_owned());
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"].map(str::to_owned));
    let mut table_rows = vec![header];
    for r in &rows {
        let mut row = vec![field(r, "Repository"), field(r, "Tag")];
        if opts.digests {
            row.push(field(r, "Digest"));
        }
        row.extend([field(r, "ID"), field(r, "CreatedSince"), field(r, "Size")]);
        table_rows.push(row);
    }
    out.write_all(table(&table_rows).as_bytes())
        .map_err(out_err)
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
            if ev.iter().any(|e| matches!(e, RemoveEvent::Deleted(_))) && store.sweep(ix)?.is_some()
            {
                // Mount hints for blobs we no longer hold are useless.
                ix.blob_repos.retain(|d, _| store.has_blob(d));
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
        let reclaimed = store.sweep(ix)?;
        if reclaimed.is_some() {
            ix.blob_repos.retain(|d, _| store.has_blob(d));
        }
        let reclaimed = reclaimed.unwrap_or(0);
        Ok::<_, StoreError>((events, reclaimed))
    })?;
    if !events.is_empty() {
        writeln!(out, "Deleted Images:").map_err(out_err)?;
        print_events(&events, out, true)?;
        writeln!(out).map_err(out_err)?;
    }
    writeln!(out, "Total reclaimed space: {}", human_size(reclaimed)).map_err(out_err)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn reference_globs_match_like_path_match() {
        assert!(glob(b"busy*", b"busybox"));
        assert!(glob(b"team/*", b"team/app"));
        assert!(!glob(b"team*", b"team/app"), "* does not cross /");
        assert!(glob(b"*/app:v?", b"team/app:v1"));
        assert!(!glob(b"app", b"apps"));
    }
}
