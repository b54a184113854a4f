//! `bay import`: a rootfs tarball (plain or gzip) becomes a one-layer image.
//!
//! The tar is streamed once: the uncompressed bytes are hashed for the
//! config's `diff_id` while they are gzip-compressed into a blob writer that
//! hashes the compressed layer, so a large rootfs never sits in memory or in
//! two temp files.

use std::io::{self, BufRead, BufReader, Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use oci_types::{Algorithm, Digest, MediaType};
use serde_json::{Map, Value, json};

use crate::image::{Descriptor, Manifest, Platform};
use crate::reference::ImageRef;
use crate::store::{ImageStore, StoreError};

/// Import failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Reading the input failed.
    #[error("cannot read {source_name}: {source}")]
    Read {
        /// The input as named by the user.
        source_name: String,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// The input is not a tar archive.
    #[error("{source_name} is not a tar archive (plain or gzip-compressed)")]
    NotTar {
        /// The input as named by the user.
        source_name: String,
    },
    /// A `--change` instruction is not supported or malformed.
    #[error("invalid --change {change:?}: {why}")]
    Change {
        /// The instruction.
        change: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Import settings.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Dockerfile-style instructions applied to the config (`CMD ["sh"]`, `ENV A=b`, …).
    pub changes: Vec<String>,
    /// Commit message (history comment).
    pub message: Option<String>,
    /// Platform recorded in the config; the host's when `None`.
    pub platform: Option<Platform>,
}

/// Applies docker `--change` instructions to the runtime config object.
pub fn apply_changes(
    config: &mut Map<String, Value>,
    changes: &[String],
) -> Result<(), ImportError> {
    for change in changes {
        let bad = |why| ImportError::Change {
            change: change.clone(),
            why,
        };
        let (instr, rest) = change
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected INSTRUCTION ARGUMENTS"))?;
        let rest = rest.trim();
        let exec_or_shell = || -> Result<Value, ImportError> {
            if rest.starts_with('[') {
                let v: Vec<String> =
                    serde_json::from_str(rest).map_err(|_| bad("bad JSON array"))?;
                Ok(json!(v))
            } else {
                Ok(json!(["/bin/sh", "-c", rest]))
            }
        };
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => {
                config.insert("Cmd".into(), exec_or_shell()?);
            }
            "ENTRYPOINT" => {
                config.insert("Entrypoint".into(), exec_or_shell()?);
            }
            "WORKDIR" => {
                config.insert("WorkingDir".into(), json!(rest));
            }
            "USER" => {
                config.insert("User".into(), json!(rest));
            }
            "STOPSIGNAL" => {
                config.insert("StopSignal".into(), json!(rest));
            }
            "ENV" => {
                let (k, v) = match rest.split_once('=') {
                    Some((k, v)) if !k.contains(char::is_whitespace) => (k, v.trim_matches('"')),
                    _ => rest
                        .split_once(char::is_whitespace)
                        .ok_or_else(|| bad("expected ENV KEY=VALUE"))?,
                };
                let env = config.entry("Env").or_insert_with(|| json!([]));
                if let Value::Array(a) = env {
                    let prefix = format!("{k}=");
                    a.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
                    a.push(json!(format!("{k}={}", v.trim())));
                }
            }
            "LABEL" => {
                let (k, v) = rest
                    .split_once('=')
                    .ok_or_else(|| bad("expected LABEL KEY=VALUE"))?;
                let labels = config.entry("Labels").or_insert_with(|| json!({}));
                if let Value::Object(m) = labels {
                    m.insert(k.trim_matches('"').to_owned(), json!(v.trim_matches('"')));
                }
            }
            "EXPOSE" | "VOLUME" => {
                let key = if instr.eq_ignore_ascii_case("EXPOSE") {
                    "ExposedPorts"
                } else {
                    "Volumes"
                };
                let obj = config.entry(key).or_insert_with(|| json!({}));
                if let Value::Object(m) = obj {
                    for item in rest.split_whitespace() {
                        let item = if key == "ExposedPorts" && !item.contains('/') {
                            format!("{item}/tcp")
                        } else {
                            item.to_owned()
                        };
                        m.insert(item, json!({}));
                    }
                }
            }
            _ => {
                return Err(bad(
                    "supported: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR",
                ));
            }
        }
    }
    Ok(())
}

/// Imports the tar read from `input` (named `source_name` in messages and history).
/// Tags it as `tag` when given. Returns the image ID.
pub fn import(
    store: &ImageStore,
    input: impl Read,
    source_name: &str,
    tag: Option<&ImageRef>,
    opts: &ImportOptions,
) -> Result<Digest, ImportError> {
    let read_err = |source| ImportError::Read {
        source_name: source_name.to_owned(),
        source,
    };
    // Validate --change before doing any work.
    let mut runtime = Map::new();
    apply_changes(&mut runtime, &opts.changes)?;

    let _lease = store.lease()?;
    let mut buffered = BufReader::with_capacity(1 << 20, input);
    let gz = buffered
        .fill_buf()
        .map_err(read_err)?
        .starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read> = if gz {
        Box::new(GzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let writer = store.blob_writer(Algorithm::Sha256)?;
    let mut enc = GzEncoder::new(writer, Compression::default());
    let mut diff = Algorithm::Sha256.hasher();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut head = Vec::with_capacity(512);
    loop {
        let n = reader.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        if head.len() < 512 {
            let take = (512 - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
        }
        diff.update(&buf[..n]);
        enc.write_all(&buf[..n]).map_err(read_err)?;
        total += n as u64;
    }
    // A tar starts with a ustar header, or is an all-zero (empty) archive.
    let is_tar = total >= 512
        && total.is_multiple_of(512)
        && (head.get(257..262) == Some(b"ustar".as_slice()) || head.iter().all(|b| *b == 0));
    if !is_tar {
        return Err(ImportError::NotTar {
            source_name: source_name.to_owned(),
        });
    }
    let writer = enc.finish().map_err(read_err)?;
    let (layer_digest, layer_size) = writer.commit(None)?;
    let diff_id = diff.finish();

    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let comment = opts
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {source_name}"));
    let mut config = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "created": now,
        "config": Value::Object(runtime),
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        "history": [{"created": now, "created_by": format!("bay import {source_name}"), "comment": comment}],
    });
    if let (Some(v), Value::Object(m)) = (&platform.variant, &mut config) {
        m.insert("variant".into(), json!(v));
    }
    let config_bytes = serde_json::to_vec(&config).map_err(|e| read_err(e.into()))?;
    let config_digest = store.put_blob(None, &config_bytes)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MediaType::OCI_MANIFEST.to_owned()),
        config: Descriptor::new(
            MediaType::OCI_CONFIG,
            config_digest.clone(),
            config_bytes.len() as u64,
        ),
        layers: vec![Descriptor::new(
            MediaType::OCI_LAYER_GZIP,
            layer_digest,
            layer_size,
        )],
        annotations: None,
    };
    let mbytes = serde_json::to_vec(&manifest).map_err(|e| read_err(e.into()))?;
    let mdigest = store.put_blob(None, &mbytes)?;
    let rec = store.make_record(&mdigest, MediaType::OCI_MANIFEST, &manifest)?;
    store.update(|ix| {
        ImageStore::insert_record(ix, rec);
        if let Some(t) = tag
            && let Some(tagname) = t.tag_or_default()
        {
            ix.set_tag(&t.repository(), tagname.as_str(), &config_digest);
        }
        Ok::<_, StoreError>(())
    })?;
    Ok(config_digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_build_docker_config_keys() {
        let mut m = Map::new();
        apply_changes(
            &mut m,
            &[
                r#"CMD ["sh","-c","echo hi"]"#.to_owned(),
                "ENTRYPOINT /bin/run".to_owned(),
                "ENV A=1".to_owned(),
                "ENV A=2".to_owned(),
                "ENV B 3".to_owned(),
                "WORKDIR /srv".to_owned(),
                "EXPOSE 80 53/udp".to_owned(),
                "LABEL k=v".to_owned(),
            ],
        )
        .unwrap();
        assert_eq!(m["Cmd"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(m["Entrypoint"], json!(["/bin/sh", "-c", "/bin/run"]));
        assert_eq!(m["Env"], json!(["A=2", "B=3"]));
        assert_eq!(m["WorkingDir"], json!("/srv"));
        assert_eq!(m["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(m["Labels"], json!({"k": "v"}));
        assert!(apply_changes(&mut m, &["RUN rm -rf /".to_owned()]).is_err());
        assert!(apply_changes(&mut m, &["CMD [broken".to_owned()]).is_err());
    }

    #[test]
    fn import_makes_a_one_layer_image_with_diff_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_path("hello.txt").unwrap();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, &b"hello"[..]).unwrap();
        let tarball = b.into_inner().unwrap();
        let r = ImageRef::parse("local/app:1").unwrap();
        let id = import(
            &store,
            &tarball[..],
            "app.tar",
            Some(&r),
            &ImportOptions::default(),
        )
        .unwrap();
        let ix = store.read_index().unwrap();
        assert_eq!(ix.lookup("local/app:1").unwrap(), id);
        let (cfg, _) = store.config_of(&id).unwrap();
        assert_eq!(cfg.rootfs.diff_ids, vec![Digest::sha256_of(&tarball)]);
        assert_eq!(cfg.os, std::env::consts::OS);
        let m = store.manifest_of(&ix.images[&id]).unwrap();
        assert_eq!(m.layers.len(), 1);
        // The layer blob is the gzip of the tar.
        let mut plain = Vec::new();
        GzDecoder::new(store.open_blob(&m.layers[0].digest).unwrap())
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, tarball);
        // Not a tar: refused.
        assert!(matches!(
            import(
                &store,
                &b"just text"[..],
                "x",
                None,
                &ImportOptions::default()
            ),
            Err(ImportError::NotTar { .. })
        ));
    }
}
