//! Test servers (in-process and child-process) and a small OCI image builder.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bay_registry::Registry;
use bay_registry::config::Config;
use oci_types::{Digest, MediaType};
use tempfile::TempDir;

/// A registry served in-process on 127.0.0.1:0.
pub struct TestRegistry {
    pub url: String,
    pub host: String,
    pub root: PathBuf,
    _dir: TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Start an in-process registry with default configuration and a temp root.
pub async fn spawn() -> TestRegistry {
    spawn_with(|_| {}).await
}

/// Start an in-process registry after adjusting its configuration.
pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestRegistry {
    spawn_setup(adjust, |_| async {}).await
}

/// Start an in-process registry after adjusting its configuration and
/// running `setup` on its metadata (e.g. to create users) before serving.
pub async fn spawn_setup<F, Fut>(adjust: impl FnOnce(&mut Config), setup: F) -> TestRegistry
where
    F: FnOnce(bay_registry::meta::Meta) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.storage.root = dir.path().to_owned();
    adjust(&mut cfg);
    let reg = Registry::open(cfg).await.unwrap();
    setup(reg.meta().clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        reg.serve(listener, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestRegistry {
        url: format!("http://{addr}"),
        host: addr.to_string(),
        root: dir.path().to_owned(),
        _dir: dir,
        stop: Some(tx),
    }
}

/// `bay-registry serve` as a child process (for crash tests).
pub struct ChildRegistry {
    pub child: Child,
    pub url: String,
}

impl ChildRegistry {
    /// Start on `root`, on a free port, and wait until it listens.
    pub fn start(root: &Path) -> ChildRegistry {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bay-registry"))
            .args(["serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(root)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("registry exited before listening")
                .unwrap();
            if let Some(i) = line.find("addr=") {
                let rest = &line[i + 5..];
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ChildRegistry {
            child,
            url: format!("http://{addr}"),
        }
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ChildRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A gzip tar layer: (compressed bytes, diff_id of the uncompressed tar).
pub fn layer(files: &[(&str, &[u8], u32)], links: &[(&str, &str)]) -> (Vec<u8>, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for (path, _, _) in files
        .iter()
        .map(|f| (f.0, f.1, f.2))
        .chain(links.iter().map(|l| (l.0, &b""[..], 0)))
    {
        let p = Path::new(path);
        for a in p.ancestors().skip(1) {
            if !a.as_os_str().is_empty() {
                dirs.insert(a.to_owned());
            }
        }
    }
    for d in &dirs {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        tar.append_data(&mut h, format!("{}/", d.display()), &[][..])
            .unwrap();
    }
    for (path, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(*mode);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        tar.append_data(&mut h, path, *data).unwrap();
    }
    for (path, target) in links {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(0);
        tar.append_link(&mut h, path, target).unwrap();
    }
    let raw = tar.into_inner().unwrap();
    let diff_id = Digest::sha256_of(&raw);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// The busybox-static rootfs layer: `bin/busybox` plus applet symlinks.
pub fn busybox_layer() -> (Vec<u8>, Digest) {
    let bb = std::fs::read("/usr/bin/busybox").or_else(|_| std::fs::read("/bin/busybox"));
    let bb = bb.expect("busybox-static must be installed (apt-get install busybox-static)");
    let links: Vec<(String, String)> = ["sh", "ls", "echo", "true", "cat", "id", "hostname"]
        .iter()
        .map(|a| (format!("bin/{a}"), "busybox".to_owned()))
        .collect();
    let links: Vec<(&str, &str)> = links
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    layer(&[("bin/busybox", &bb, 0o755)], &links)
}

/// Write an OCI image layout at `dir` tagged `tag`, with the busybox layer
/// plus `extra_layers - 1` small distinct layers. Returns the manifest digest.
pub fn oci_layout(dir: &Path, tag: &str, layers: usize) -> Digest {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| -> Digest {
        let d = Digest::sha256_of(data);
        std::fs::write(blobs.join(d.hex()), data).unwrap();
        d
    };
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for i in 0..layers {
        let (gz, diff) = if i == 0 {
            busybox_layer()
        } else {
            let body = format!("layer {i}\n").repeat(1000 + i);
            layer(
                &[(&format!("data/layer-{i}.txt"), body.as_bytes(), 0o644)],
                &[],
            )
        };
        let d = put(&gz);
        descs.push(serde_json::json!({"mediaType": MediaType::OCI_LAYER_GZIP, "digest": d.to_string(), "size": gz.len()}));
        diff_ids.push(diff.to_string());
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [],
    });
    let config = serde_json::to_vec(&config).unwrap();
    let cd = put(&config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MediaType::OCI_MANIFEST,
        "config": {"mediaType": MediaType::OCI_CONFIG, "digest": cd.to_string(), "size": config.len()},
        "layers": descs,
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let md = put(&manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": MediaType::OCI_MANIFEST, "digest": md.to_string(), "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}}],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    md
}

/// Manifest digest recorded for `tag` in an OCI layout's index.json.
pub fn layout_digest(dir: &Path, tag: &str) -> Digest {
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let m = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("tag {tag} not in {}", dir.display()));
    Digest::parse(m["digest"].as_str().unwrap()).unwrap()
}

/// A temp directory path (kept alive by the returned guard).
pub fn tmp() -> (TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().to_owned();
    (d, p)
}
