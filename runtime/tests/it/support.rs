use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use bay_runtime::spec::RunOptions;
use bay_runtime::{ContainerId, ExitStatus, Runtime, SpecInput, Stdio, StdioConfig, build_spec};
use oci_types::Digest;

pub const BUSYBOX: &str = "/usr/bin/busybox";

/// Why this machine cannot run the end-to-end tests, if it cannot.
pub fn missing() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root".into());
    }
    if !Path::new(BUSYBOX).exists() {
        return Some(format!("{BUSYBOX} (busybox-static) is not installed"));
    }
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !fs.contains("overlay") {
        return Some("overlayfs is not available".into());
    }
    if bay_runtime::cgroups::detect().is_err() {
        return Some("no cgroup hierarchy is mounted".into());
    }
    None
}

macro_rules! require_env {
    ($name:expr) => {
        if let Some(why) = crate::support::missing() {
            eprintln!("SKIP {}: {}", $name, why);
            return;
        }
    };
}
pub(crate) use require_env;

/// A gzip tar layer holding busybox-static and its applet symlinks.
pub fn busybox_layer() -> Vec<u8> {
    let list = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .unwrap();
    let applets = String::from_utf8(list.stdout).unwrap();
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let dir = |b: &mut tar::Builder<_>, p: &str, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, p, std::io::empty()).unwrap();
    };
    let file = |b: &mut tar::Builder<_>, p: &str, mode: u32, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, p, data).unwrap();
    };
    for d in [
        "bin/", "etc/", "proc/", "sys/", "dev/", "root/", "home/", "usr/", "usr/bin/", "var/",
    ] {
        dir(&mut b, d, 0o755);
    }
    dir(&mut b, "tmp/", 0o1777);
    file(
        &mut b,
        "bin/busybox",
        0o755,
        &std::fs::read(BUSYBOX).unwrap(),
    );
    file(
        &mut b,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    );
    file(&mut b, "etc/group", 0o644, b"root:x:0:\napp:x:1000:\n");
    file(&mut b, "etc/hello", 0o644, b"from the image\n");
    for a in applets.lines().filter(|a| !a.is_empty() && *a != "busybox") {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, format!("bin/{a}"), "busybox")
            .unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

pub struct Env {
    pub _dir: tempfile::TempDir,
    pub _run: Option<tempfile::TempDir>,
    pub rt: Runtime,
    pub image: Vec<Digest>,
}

/// A hung container must not hang CI for its whole budget: the test binary
/// exits after two minutes (the suite takes a few seconds).
fn watchdog() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::thread::spawn(|| {
            std::thread::sleep(std::time::Duration::from_secs(120));
            eprintln!("runtime integration tests still running after 120 s: aborting");
            std::process::exit(101);
        });
    });
}

pub fn env() -> Env {
    watchdog();
    let dir = tempfile::Builder::new()
        .prefix("bay-rt-")
        .tempdir_in("/tmp")
        .unwrap();
    let mut rt = Runtime::open(dir.path().join("root")).unwrap();
    // `run --rm` containers go to a tmpfs run dir when there is one.
    let run = tempfile::Builder::new()
        .prefix("bay-rt-run-")
        .tempdir_in("/dev/shm")
        .ok();
    if let Some(run) = &run {
        rt = rt.with_run_dir(run.path()).unwrap();
    }
    let blob = busybox_layer();
    let digest = Digest::sha256_of(&blob);
    rt.layers().unpack(&digest, &blob[..]).unwrap();
    Env {
        _dir: dir,
        _run: run,
        rt,
        image: vec![digest],
    }
}

pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

fn reader(fd: OwnedFd) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::fs::File::from(fd).read_to_string(&mut s);
        s
    })
}

pub fn spec(env: &Env, id: &ContainerId, opts: &RunOptions) -> oci_spec::runtime::Spec {
    let layers = env.rt.layer_paths(&env.image).unwrap();
    build_spec(
        SpecInput {
            id,
            image: None,
            layers: &layers,
        },
        opts,
    )
    .unwrap()
}

pub fn new_id() -> ContainerId {
    ContainerId::generate().unwrap()
}

/// Runs `sh -c script` in a fresh container with `opts`, removing it after.
pub fn sh(env: &Env, script: &str, opts: RunOptions) -> Output {
    run(env, &["/bin/sh", "-c", script], opts)
}

pub fn run(env: &Env, cmd: &[&str], mut opts: RunOptions) -> Output {
    opts.cmd = cmd.iter().map(|s| (*s).to_owned()).collect();
    let id = new_id();
    let spec = spec(env, &id, &opts);
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let (o, e) = (reader(out_r), reader(err_r));
    let status = env
        .rt
        .run(
            id,
            &spec,
            &env.image,
            StdioConfig {
                stdin: Stdio::Null,
                stdout: Stdio::Fd(out_w),
                stderr: Stdio::Fd(err_w),
            },
            true,
        )
        .unwrap();
    Output {
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    }
}
