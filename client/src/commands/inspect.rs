//! `inspect` and `history`.

use std::io::Write;

use serde_json::{Value, json};

use super::{CommandError, Env, out_err};
use crate::format::{human_size, since, table};
use crate::store::{ImageStore, Index, StoreError};
use crate::template::Template;

/// The `docker image inspect` document, fields in docker's order.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectDoc {
    id: String,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
    parent: String,
    comment: String,
    created: String,
    docker_version: String,
    author: String,
    config: Value,
    architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
    os: String,
    size: u64,
    #[serde(rename = "RootFS")]
    root_fs: Value,
    metadata: Value,
    descriptor: Value,
}

/// The `docker image inspect` document for one image.
pub fn inspect_value(
    store: &ImageStore,
    ix: &Index,
    query: &str,
) -> Result<InspectDoc, StoreError> {
    let id = ix.lookup(query)?;
    let rec = ix.record(&id)?;
    let (cfg, raw) = store.config_of(&id)?;
    let rawv: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let manifest_size = store.blob_size(&rec.manifest).unwrap_or(0);
    Ok(InspectDoc {
        id: id.to_string(),
        repo_tags: ix.tags_of(&id),
        repo_digests: rec.repo_digests.iter().cloned().collect(),
        parent: String::new(),
        comment: cfg
            .history
            .last()
            .and_then(|h| h.comment.clone())
            .unwrap_or_default(),
        created: cfg.created.clone().unwrap_or_default(),
        docker_version: rawv
            .get("docker_version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        author: cfg.author.clone().unwrap_or_default(),
        config: cfg.config.clone().unwrap_or(Value::Null),
        architecture: cfg.architecture,
        variant: cfg.variant,
        os: cfg.os,
        size: rec.size,
        root_fs: json!({"Type": "layers", "Layers": cfg.rootfs.diff_ids.iter().map(ToString::to_string).collect::<Vec<_>>()}),
        metadata: json!({"LastTagTime": rec.last_tag_time.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned())}),
        descriptor: json!({"mediaType": rec.manifest_media_type, "digest": rec.manifest.to_string(), "size": manifest_size}),
    })
}

/// `bay inspect [--format F] NAME…` (and `bay image inspect`). `object_word`
/// is "object" for `inspect` (images, then containers), "image" for `image
/// inspect` and "container" for `inspect --type container`, as in docker's errors.
pub fn inspect(
    env: &Env,
    names: &[String],
    format: Option<&str>,
    object_word: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let tmpl = format.map(Template::parse).transpose()?;
    let store = env.store()?;
    let ix = store.read_index()?;
    let mut found = Vec::new();
    let mut failed = 0;
    // Like docker: `inspect` (object_word "object") falls back to
    // containers; `--type container` ("container") looks only there.
    let containers = (object_word != "image")
        .then(|| super::container::open_runtime(env).ok())
        .flatten();
    for n in names {
        if object_word != "container" {
            match inspect_value(&store, &ix, n) {
                Ok(v) => {
                    found.push(serde_json::to_value(v).map_err(|e| out_err(e.into()))?);
                    continue;
                }
                Err(StoreError::Lookup(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(rt) = &containers {
            match super::container::inspect_container(rt, n) {
                Ok(v) => {
                    found.push(v);
                    continue;
                }
                Err(CommandError::Runtime(
                    bay_runtime::ContainerError::NoSuchContainer { .. }
                    | bay_runtime::ContainerError::AmbiguousPrefix { .. },
                )) => {}
                Err(e) => return Err(e),
            }
        }
        failed += 1;
        writeln!(err, "Error: No such {object_word}: {n}").map_err(out_err)?;
    }
    super::container::write_docs(&found, tmpl.as_ref(), out)?;
    if failed > 0 {
        return Err(CommandError::Partial { failed });
    }
    Ok(())
}

/// `bay history` flags.
#[derive(Debug, Clone)]
pub struct HistoryOptions {
    /// `--no-trunc`.
    pub no_trunc: bool,
    /// `-q`.
    pub quiet: bool,
    /// `-H` (default true): human sizes and dates.
    pub human: bool,
}

/// docker's `stringutils.Ellipsis`: at most `max` characters, the last being "…".
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

/// `bay history IMAGE`.
pub fn history(
    env: &Env,
    name: &str,
    opts: &HistoryOptions,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let store = env.store()?;
    let ix = store.read_index()?;
    let id = ix.lookup(name).map_err(StoreError::from)?;
    let rec = ix.record(&id).map_err(StoreError::from)?;
    let (cfg, _) = store.config_of(&id)?;
    let manifest = store.manifest_of(rec)?;
    let mut layers = manifest.layers.iter();
    let mut entries: Vec<(Option<String>, String, u64, String)> = Vec::new();
    if cfg.history.is_empty() {
        for l in manifest.layers.iter() {
            entries.push((None, String::new(), l.size, String::new()));
        }
    }
    for h in &cfg.history {
        let size = if h.empty_layer {
            0
        } else {
            layers.next().map_or(0, |l| l.size)
        };
        entries.push((
            h.created.clone(),
            h.created_by.clone().unwrap_or_default().replace('\t', " "),
            size,
            h.comment.clone().unwrap_or_default(),
        ));
    }
    entries.reverse();
    let image_col = |i: usize| {
        if i == 0 {
            if opts.no_trunc {
                id.to_string()
            } else {
                id.hex()[..12].to_owned()
            }
        } else {
            "<missing>".to_owned()
        }
    };
    if opts.quiet {
        for i in 0..entries.len() {
            writeln!(out, "{}", image_col(i)).map_err(out_err)?;
        }
        return Ok(());
    }
    let mut rows = vec![
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for (i, (created, by, size, comment)) in entries.into_iter().enumerate() {
        let t = created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|t| t.with_timezone(&chrono::Utc));
        let created = if opts.human {
            since(t)
        } else {
            created.unwrap_or_default()
        };
        let by = if opts.no_trunc { by } else { ellipsis(&by, 45) };
        let size = if opts.human {
            human_size(size)
        } else {
            size.to_string()
        };
        rows.push(vec![image_col(i), created, by, size, comment]);
    }
    out.write_all(table(&rows).as_bytes()).map_err(out_err)
}
