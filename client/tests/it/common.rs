//! Fixtures: the `bay` binary in a temp data root, registries on free ports,
//! and test images built from /usr/bin/busybox.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use oci_types::Digest;
use serde_json::json;

/// A bay CLI bound to its own data root.
pub struct Bay {
    pub root: tempfile::TempDir,
}

impl Bay {
    pub fn new() -> Self {
        Bay {
            root: tempfile::tempdir().unwrap(),
        }
    }

    pub fn data_root(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bay"));
        c.args(args)
            .env("BAY_DATA_ROOT", self.data_root())
            .env_remove("DOCKER_CONTENT_TRUST")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "bay {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs and asserts failure with `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "bay {args:?}: stdout {}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8(o.stderr).unwrap()
    }

    pub fn store(&self) -> bay_client::store::ImageStore {
        bay_client::store::ImageStore::open(&self.data_root()).unwrap()
    }
}

pub fn have(bin: &str) -> bool {
    Path::new(bin).exists()
}

/// A running registry; killed on drop.
pub struct Registry {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
    pub name: &'static str,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_up(addr: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("registry exited early: {st}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("registry on {addr} did not come up");
}

pub const DISTRIBUTION: &str = "/usr/bin/docker-registry";

/// CNCF Distribution 2.8.2 (Debian's docker-registry), or None with a printed reason.
pub fn distribution() -> Option<Registry> {
    distribution_with(|_| String::new())
}

/// Distribution with extra top-level config lines, made from its temp dir
/// (e.g. an `auth:` section pointing at a file written there).
pub fn distribution_with(extra: impl FnOnce(&Path) -> String) -> Option<Registry> {
    if !have(DISTRIBUTION) {
        eprintln!("SKIP: {DISTRIBUTION} is not installed (apt-get install docker-registry)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let cfg = dir.path().join("config.yml");
    let extra = extra(dir.path());
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: {addr}}}\n{extra}",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(DISTRIBUTION)
        .arg("serve")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_up(&addr, &mut child);
    Some(Registry {
        child,
        addr,
        _dir: dir,
        name: "distribution",
    })
}

/// The workspace's bay-registry binary (built by the lead), or None with a printed reason.
pub fn bay_registry() -> Option<Registry> {
    bay_registry_with(&[])
}

/// The bay-registry binary: `$BAY_REGISTRY_BIN`, else the debug build in
/// `$CARGO_TARGET_DIR` or the workspace's `target/`.
pub fn bay_registry_bin() -> Option<PathBuf> {
    if let Some(b) = std::env::var_os("BAY_REGISTRY_BIN") {
        return Some(PathBuf::from(b)).filter(|p| p.exists());
    }
    let mut candidates = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(t).join("debug/bay-registry"));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/bay-registry"));
    candidates.into_iter().find(|p| p.exists())
}

/// bay-registry serving an existing data root (e.g. with users already added).
pub fn bay_registry_at(root: &Path) -> Registry {
    let bin = bay_registry_bin().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(bin)
        .args(["serve", "--addr", &addr, "--root"])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_up(&addr, &mut child);
    Registry {
        child,
        addr,
        _dir: dir,
        name: "bay-registry",
    }
}

/// bay-registry with extra `serve` arguments.
pub fn bay_registry_with(extra: &[&str]) -> Option<Registry> {
    let Some(bin) = bay_registry_bin() else {
        eprintln!(
            "SKIP: bay-registry not built (cargo build -p bay-registry), or set BAY_REGISTRY_BIN"
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(bin)
        .args(["serve", "--addr", &addr, "--root"])
        .arg(dir.path().join("data"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_up(&addr, &mut child);
    Some(Registry {
        child,
        addr,
        _dir: dir,
        name: "bay-registry",
    })
}

pub const BUSYBOX: &str = "/usr/bin/busybox";

/// A rootfs tar with bin/busybox and a few applet symlinks, or None (skip) without busybox-static.
pub fn busybox_rootfs(dir: &Path) -> Option<PathBuf> {
    if !have(BUSYBOX) {
        eprintln!("SKIP: {BUSYBOX} missing (apt-get install busybox-static)");
        return None;
    }
    let tarpath = dir.join("rootfs.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&tarpath).unwrap());
    b.append_path_with_name(BUSYBOX, "bin/busybox").unwrap();
    for applet in ["sh", "ls", "cat", "echo", "true"] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        // Real image layers carry numeric owner and time fields.
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    b.finish().unwrap();
    Some(tarpath)
}

/// A tar of one file with `size` bytes of pseudo-random (incompressible) data.
pub fn random_layer_tar(name: &str, size: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; size];
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_size(size as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &data[..]).unwrap();
    b.into_inner().unwrap()
}

/// Writes an OCI layout at `dir` with `layers` (uncompressed tars, gzipped here), tagged `tag`.
/// Returns the manifest digest.
pub fn oci_layout(dir: &Path, layers: &[Vec<u8>], tag: &str) -> Digest {
    oci_layout_for(
        dir,
        layers,
        tag,
        &bay_client::image::Platform::host().architecture,
    )
    .0
}

/// Like [`oci_layout`] for architecture `arch`; returns (manifest digest, manifest size, config digest).
pub fn oci_layout_for(
    dir: &Path,
    layers: &[Vec<u8>],
    tag: &str,
    arch: &str,
) -> (Digest, usize, Digest) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = Digest::sha256_of(bytes);
        std::fs::write(blobs.join(d.hex()), bytes).unwrap();
        d
    };
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        diff_ids.push(Digest::sha256_of(l).to_string());
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(l).unwrap();
        let c = gz.finish().unwrap();
        let d = put(&c);
        descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.to_string(), "size": c.len()}));
    }
    let config = serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().enumerate().map(|(i, _)| json!({"created": "2026-01-01T00:00:00Z", "created_by": format!("layer {i}")})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let cd = put(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    let md = put(&manifest);
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(), "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    (md, manifest.len(), cd)
}

/// A layout whose `tag` is an image index over one image per architecture.
/// Returns (index digest, config digest per arch).
pub fn oci_index_layout(dir: &Path, arches: &[&str], tag: &str) -> (Digest, Vec<Digest>) {
    let mut entries = Vec::new();
    let mut configs = Vec::new();
    for (i, arch) in arches.iter().enumerate() {
        let layer = random_layer_tar(&format!("{arch}.bin"), 50_000, 900 + i as u64);
        let (md, size, cd) = oci_layout_for(dir, &[layer], arch, arch);
        configs.push(cd);
        entries.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(),
            "size": size, "platform": {"os": "linux", "architecture": arch}}));
    }
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries})).unwrap();
    let d = Digest::sha256_of(&index);
    std::fs::write(dir.join("blobs/sha256").join(d.hex()), &index).unwrap();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": d.to_string(), "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
        .unwrap(),
    )
    .unwrap();
    (d, configs)
}

/// Tars a directory (e.g. an OCI layout) to `out`.
pub fn tar_dir(dir: &Path, out: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    b.append_dir_all(".", dir).unwrap();
    b.finish().unwrap();
}

pub fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo").args(args).output().unwrap()
}

pub fn have_skopeo() -> bool {
    let ok = Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: skopeo is not installed (apt-get install skopeo)");
    }
    ok
}
