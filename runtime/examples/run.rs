//! A tiny `bay run --rm` over a busybox-static image, for debugging and for
//! `bench/runtime.sh`:
//! `run [--prepare] [--privileged] [--print-spec] STATE_ROOT CMD...`.
//!
//! `--prepare` (once) builds the busybox layer from `/usr/bin/busybox`,
//! unpacks it and warms the seccomp cache; later runs just start `CMD` with
//! docker's defaults (namespaces, overlay, cgroup, caps, seccomp) and exit
//! with its status.

use std::path::PathBuf;

use anyhow::{Context, bail};
use bay_runtime::spec::RunOptions;
use bay_runtime::{ContainerId, Runtime, SpecInput, StdioConfig, build_spec};
use oci_types::Digest;

fn busybox_layer() -> anyhow::Result<Vec<u8>> {
    let list = std::process::Command::new("/usr/bin/busybox")
        .arg("--list")
        .output()?;
    let applets = String::from_utf8(list.stdout)?;
    let mut b = tar::Builder::new(Vec::new());
    let hdr = |kind, mode, size| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(size);
        h
    };
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
        b.append_data(
            &mut hdr(tar::EntryType::Directory, 0o755, 0),
            d,
            std::io::empty(),
        )?;
    }
    let bb = std::fs::read("/usr/bin/busybox")?;
    b.append_data(
        &mut hdr(tar::EntryType::Regular, 0o755, bb.len() as u64),
        "bin/busybox",
        &bb[..],
    )?;
    for a in applets.lines().filter(|a| !a.is_empty() && *a != "busybox") {
        b.append_link(
            &mut hdr(tar::EntryType::Symlink, 0o777, 0),
            format!("bin/{a}"),
            "busybox",
        )?;
    }
    Ok(b.into_inner()?)
}

fn main() -> anyhow::Result<()> {
    let t0 = std::time::Instant::now();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let prepare = args.first().is_some_and(|a| a == "--prepare");
    if prepare {
        args.remove(0);
    }
    let privileged = args.first().is_some_and(|a| a == "--privileged");
    if privileged {
        args.remove(0);
    }
    // `--print-spec`: print the spec (docker defaults) instead of running,
    // for building an equivalent runc/crun bundle.
    let print_spec = args.first().is_some_and(|a| a == "--print-spec");
    if print_spec {
        args.remove(0);
    }
    if args.len() < 2 && !(prepare && args.len() == 1) {
        bail!("usage: run [--prepare] [--privileged] [--print-spec] STATE_ROOT CMD...");
    }
    let root = PathBuf::from(&args[0]);
    // BAY_CGROUP2=DIR: drive a cgroup2 hierarchy at DIR (e.g. the hybrid
    // host's /sys/fs/cgroup/unified) to time the CLONE_INTO_CGROUP path.
    let mut rt = match std::env::var_os("BAY_CGROUP2") {
        Some(dir) => Runtime::with_cgroups(
            &root,
            Box::new(bay_runtime::cgroups::CgroupV2::new(PathBuf::from(dir))),
        ),
        None => Runtime::open(&root),
    }
    .context("opening the runtime")?;
    // What `bay run` does first: start the slow part of joining v1 cgroups.
    rt.cgroups().prewarm();
    // BAY_RUN_DIR: a tmpfs for the --rm container's upper/work dirs.
    if let Some(run_dir) = std::env::var_os("BAY_RUN_DIR") {
        rt = rt.with_run_dir(PathBuf::from(run_dir))?;
    }
    let image_file = root.join("image-digest");
    if prepare {
        let blob = busybox_layer()?;
        let digest = Digest::sha256_of(&blob);
        rt.layers().unpack(&digest, &blob[..])?;
        std::fs::write(&image_file, digest.to_string())?;
        if args.len() == 1 {
            args.push("/bin/true".into());
        }
    }
    let digest = Digest::parse(std::fs::read_to_string(&image_file)?.trim())?;
    let layers = vec![digest];
    let id = ContainerId::generate()?;
    let paths = rt.layer_paths(&layers)?;
    let opts = RunOptions {
        cmd: args[1..].to_vec(),
        network: "none".parse()?,
        privileged,
        ..Default::default()
    };
    let spec = build_spec(
        SpecInput {
            id: &id,
            image: None,
            layers: &paths,
        },
        &opts,
    )?;
    if print_spec {
        println!("{}", serde_json::to_string_pretty(&spec)?);
        return Ok(());
    }
    // BAY_TIMING=1 prints the phases (create, start, wait, delete) to stderr.
    if std::env::var_os("BAY_TIMING").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter("bay_runtime=debug")
            .with_writer(std::io::stderr)
            .init();
        let t = std::time::Instant::now();
        let mut c = rt.create(id, &spec, &layers)?;
        let created = t.elapsed();
        c.start(StdioConfig::default())?;
        let started = t.elapsed();
        let status = c.wait()?;
        let waited = t.elapsed();
        c.delete(false)?;
        let deleted = t.elapsed();
        eprintln!(
            "build_spec+open {:?} create {:?} start {:?} wait {:?} delete {:?}",
            t0.elapsed() - deleted,
            created,
            started - created,
            waited - started,
            deleted - waited
        );
        std::process::exit(status.code);
    }
    match rt.run(id, &spec, &layers, StdioConfig::default(), true) {
        Ok(status) => std::process::exit(status.code),
        Err(e) => {
            eprintln!("run: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
