//! The cgroup v2 start path (CLONE_INTO_CGROUP, a cgroup2 mount, nodev
//! device guard), exercised on a hybrid host through its `unified` tree,
//! which has no resource controllers but is a real cgroup2 hierarchy.

use bay_runtime::Runtime;
use bay_runtime::cgroups::CgroupV2;
use bay_runtime::spec::RunOptions;
use oci_types::Digest;

use crate::support::{Env, busybox_layer, new_id, require_env, spec};
use bay_runtime::{Stdio, StdioConfig};

#[test]
fn v2_clone_into_cgroup_path() {
    require_env!("v2_clone_into_cgroup_path");
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mounts = bay_runtime::cgroups::parse_mountinfo(&text);
    let root = if let Some(m) = mounts.iter().find(|m| m.fs_type == "cgroup2") {
        m.mount_point.clone()
    } else {
        eprintln!("SKIP v2_clone_into_cgroup_path: no cgroup2 hierarchy mounted");
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("bay-rt-v2-")
        .tempdir_in("/tmp")
        .unwrap();
    let rt = Runtime::with_cgroups(
        dir.path().join("root"),
        Box::new(CgroupV2::new(root.clone())),
    )
    .unwrap();
    let blob = busybox_layer();
    let digest = Digest::sha256_of(&blob);
    rt.layers().unpack(&digest, &blob[..]).unwrap();
    let env = Env {
        _dir: dir,
        _run: None,
        rt,
        image: vec![digest],
    };

    let vol = tempfile::tempdir().unwrap();
    let id = new_id();
    let script = "cat /proc/self/cgroup | grep '^0::'; grep ' /sys/fs/cgroup ' /proc/self/mountinfo | cut -d' ' -f6,8; \
                  mknod /tmp/k c 1 11 2>/dev/null; (true < /tmp/k) 2>/dev/null && echo rootfs-dev-ok; \
                  mknod /dev/k c 1 11 2>/dev/null && echo dev-mknod-ok; \
                  mknod /vol/k c 1 11 2>/dev/null; (true < /vol/k) 2>/dev/null && echo volume-dev-ok; \
                  grep -c Seccomp:.2 /proc/self/status";
    let sp = spec(
        &env,
        &id,
        &RunOptions {
            cmd: vec!["/bin/sh".into(), "-c".into(), script.into()],
            mounts: vec![
                bay_runtime::spec::MountSpec::parse_volume(&format!(
                    "{}:/vol",
                    vol.path().display()
                ))
                .unwrap(),
            ],
            ..Default::default()
        },
    );
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let mut c = env.rt.create(id.clone(), &sp, &env.image).unwrap();
    c.start(StdioConfig {
        stdin: Stdio::Null,
        stdout: Stdio::Fd(w),
        stderr: Stdio::Inherit,
    })
    .unwrap();
    let pid = c.state().pid.unwrap();
    let host_view = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let status = c.wait().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut out).unwrap();
    c.delete(false).unwrap();
    assert_eq!(status.code, 0, "{out}");
    assert!(
        host_view.lines().any(|l| l == format!("0::/bay/{id}")),
        "cloned straight into its v2 cgroup: {host_view}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "0::/",
        "cgroup ns rooted at the container's cgroup: {out}"
    );
    assert!(
        lines[1].starts_with("ro,") && lines[1].ends_with("cgroup2"),
        "read-only cgroup2 mount: {out}"
    );
    assert!(
        !out.contains("rootfs-dev-ok"),
        "rootfs is nodev without a device cgroup: {out}"
    );
    assert!(
        !out.contains("dev-mknod-ok"),
        "/dev is read-only without a device cgroup: {out}"
    );
    assert!(
        !out.contains("volume-dev-ok"),
        "volumes are nodev without a device cgroup: {out}"
    );
    assert_eq!(lines.last().copied(), Some("1"), "{out}");
    assert!(
        !root.join("bay").join(id.as_str()).exists(),
        "cgroup removed"
    );
}
