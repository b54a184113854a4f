use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Capability, LinuxNamespaceType, Spec};

use super::*;

fn id() -> ContainerId {
    ContainerId::parse("0123456789abcdef").unwrap()
}

fn image(entrypoint: &[&str], cmd: &[&str]) -> oci_spec::image::Config {
    let mut c = oci_spec::image::Config::default();
    c.set_entrypoint(
        Some(entrypoint.iter().map(|s| (*s).to_owned()).collect())
            .filter(|v: &Vec<_>| !v.is_empty()),
    );
    c.set_cmd(Some(cmd.iter().map(|s| (*s).to_owned()).collect()));
    c.set_env(Some(vec!["PATH=/bin".into(), "A=image".into()]));
    c.set_working_dir(Some("/srv".into()));
    c
}

fn build(img: Option<&oci_spec::image::Config>, layers: &[PathBuf], opts: &RunOptions) -> Spec {
    build_spec(
        SpecInput {
            id: &id(),
            image: img,
            layers,
        },
        opts,
    )
    .unwrap()
}

fn mask(caps: &HashSet<Capability>) -> u64 {
    caps.iter()
        .map(|c| {
            let name = serde_json::to_value(c).unwrap();
            name.as_str()
                .unwrap()
                .parse::<caps::Capability>()
                .unwrap()
                .bitmask()
        })
        .fold(0, |a, b| a | b)
}

#[test]
fn docker_defaults() {
    let img = image(&[], &["/bin/sh"]);
    let s = build(Some(&img), &[], &RunOptions::default());
    let p = s.process().as_ref().unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &vec!["/bin/sh".to_owned()]);
    assert_eq!(p.cwd(), Path::new("/srv"));
    let c = p.capabilities().as_ref().unwrap();
    for set in [c.bounding(), c.effective(), c.permitted(), c.inheritable()] {
        assert_eq!(mask(set.as_ref().unwrap()), defaults::DEFAULT_CAP_MASK);
    }
    assert!(c.ambient().as_ref().unwrap().is_empty());
    assert_eq!(p.no_new_privileges(), Some(false));
    assert_eq!(s.hostname().as_deref(), Some("0123456789ab"));
    let env = p.env().as_ref().unwrap();
    assert!(env.contains(&"PATH=/bin".to_owned()));
    assert!(env.contains(&"HOSTNAME=0123456789ab".to_owned()));
    assert!(env.contains(&"HOME=/root".to_owned()));
    let linux = s.linux().as_ref().unwrap();
    assert_eq!(linux.masked_paths().as_ref().unwrap().len(), 12);
    assert_eq!(linux.readonly_paths().as_ref().unwrap().len(), 5);
    let ns: HashSet<LinuxNamespaceType> = linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    assert_eq!(
        ns,
        HashSet::from([
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Cgroup,
        ])
    );
    assert!(linux.seccomp().is_some());
    let dests: Vec<String> = s
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().display().to_string())
        .collect();
    assert_eq!(
        dests,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm"
        ]
    );
    let sys = &s.mounts().as_ref().unwrap()[3];
    assert!(sys.options().as_ref().unwrap().contains(&"ro".to_owned()));
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    assert!(
        !rules[0].allow() && rules[0].typ().is_none(),
        "deny all first"
    );
    assert!(
        !rules
            .iter()
            .any(|r| r.allow() && r.major() == Some(10) && r.minor() == Some(229)),
        "fuse stays denied"
    );
}

#[test]
fn entrypoint_cmd_and_env_follow_docker() {
    let img = image(&["/entry"], &["default-arg"]);
    let s = build(
        Some(&img),
        &[],
        &RunOptions {
            cmd: vec!["x".into()],
            ..Default::default()
        },
    );
    assert_eq!(
        s.process().as_ref().unwrap().args().as_ref().unwrap(),
        &vec!["/entry".to_owned(), "x".to_owned()]
    );
    let opts = RunOptions {
        entrypoint: Some(vec!["/other".into()]),
        env: vec!["A=run".into()],
        workdir: Some("/w".into()),
        hostname: Some("box".into()),
        ..Default::default()
    };
    let s = build(Some(&img), &[], &opts);
    let p = s.process().as_ref().unwrap();
    assert_eq!(
        p.args().as_ref().unwrap(),
        &vec!["/other".to_owned()],
        "--entrypoint drops the image cmd"
    );
    assert!(p.env().as_ref().unwrap().contains(&"A=run".to_owned()));
    assert!(!p.env().as_ref().unwrap().contains(&"A=image".to_owned()));
    assert_eq!(p.cwd(), Path::new("/w"));
    assert_eq!(s.hostname().as_deref(), Some("box"));
    let err = build_spec(
        SpecInput {
            id: &id(),
            image: None,
            layers: &[],
        },
        &RunOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, SpecError::NoCommand));
}

#[test]
fn caps_add_drop_and_privileged() {
    let img = image(&[], &["sh"]);
    let opts = RunOptions {
        cap_add: vec!["SYS_ADMIN".into()],
        cap_drop: vec!["cap_net_raw".into()],
        ..Default::default()
    };
    let s = build(Some(&img), &[], &opts);
    let c = s
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    let m = mask(c.effective().as_ref().unwrap());
    assert_eq!(m, (defaults::DEFAULT_CAP_MASK | (1 << 21)) & !(1 << 13));
    // CAP_SYS_ADMIN unlocks mount in the filter.
    let sc = s.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
    assert!(seccomp::unconditionally_allowed(sc).contains("mount"));

    let s = build(
        Some(&img),
        &[],
        &RunOptions {
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["KILL".into()],
            ..Default::default()
        },
    );
    let c = s
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    assert_eq!(mask(c.bounding().as_ref().unwrap()), 1 << 5);

    let s = build(
        Some(&img),
        &[],
        &RunOptions {
            privileged: true,
            ..Default::default()
        },
    );
    let linux = s.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none(), "privileged is unconfined");
    assert!(
        linux.masked_paths().as_ref().unwrap().is_empty()
            && linux.readonly_paths().as_ref().unwrap().is_empty()
    );
    let c = s
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    assert!(
        c.effective()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin)
    );
    let sys = &s.mounts().as_ref().unwrap()[3];
    assert!(sys.options().as_ref().unwrap().contains(&"rw".to_owned()));
    assert!(linux.devices().as_ref().unwrap().len() >= 6);
    assert!(
        build_spec(
            SpecInput {
                id: &id(),
                image: Some(&img),
                layers: &[]
            },
            &RunOptions {
                cap_add: vec!["BOGUS".into()],
                ..Default::default()
            }
        )
        .is_err()
    );
}

#[test]
fn resources_map_like_docker() {
    let img = image(&[], &["sh"]);
    let opts = RunOptions {
        resources: Resources {
            memory: Some(32 << 20),
            cpus: Some(0.5),
            cpu_shares: Some(512),
            pids_limit: Some(20),
            cpuset_cpus: Some("0".into()),
            ..Default::default()
        },
        network: NetworkMode::Host,
        security: SecurityOpts {
            seccomp: SeccompProfile::Unconfined,
            no_new_privileges: true,
        },
        read_only: true,
        ..Default::default()
    };
    let s = build(Some(&img), &[], &opts);
    let r = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
    let m = r.memory().as_ref().unwrap();
    assert_eq!(m.limit(), Some(32 << 20));
    assert_eq!(
        m.swap(),
        Some(64 << 20),
        "docker's default swap = 2 x memory"
    );
    let c = r.cpu().as_ref().unwrap();
    assert_eq!(
        (c.quota(), c.period(), c.shares()),
        (Some(50_000), Some(100_000), Some(512))
    );
    assert_eq!(c.cpus().as_deref(), Some("0"));
    assert_eq!(r.pids().as_ref().unwrap().limit(), 20);
    let linux = s.linux().as_ref().unwrap();
    assert!(
        !linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Network)
    );
    assert!(linux.seccomp().is_none());
    assert!(
        linux.sysctl().is_none(),
        "no netns sysctls with the host network"
    );
    assert_eq!(
        s.process().as_ref().unwrap().no_new_privileges(),
        Some(true)
    );
    assert_eq!(s.root().as_ref().unwrap().readonly(), Some(true));
}

#[test]
fn users_resolve_from_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let layer = dir.path().join("l");
    std::fs::create_dir_all(layer.join("etc")).unwrap();
    std::fs::write(
        layer.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        layer.join("etc/group"),
        "root:x:0:\napp:x:1000:\nwheel:x:10:app\n",
    )
    .unwrap();
    let img = image(&[], &["sh"]);
    let layers = vec![layer.clone()];
    let s = build(
        Some(&img),
        &layers,
        &RunOptions {
            user: Some("app".into()),
            ..Default::default()
        },
    );
    let u = s.process().as_ref().unwrap().user();
    assert_eq!((u.uid(), u.gid()), (1000, 1000));
    assert_eq!(u.additional_gids().as_deref(), Some(&[10u32][..]));
    assert!(
        s.process()
            .as_ref()
            .unwrap()
            .env()
            .as_ref()
            .unwrap()
            .contains(&"HOME=/home/app".to_owned())
    );
    let s = build(
        Some(&img),
        &layers,
        &RunOptions {
            user: Some("4242:wheel".into()),
            ..Default::default()
        },
    );
    let u = s.process().as_ref().unwrap().user();
    assert_eq!((u.uid(), u.gid()), (4242, 10));
    let err = build_spec(
        SpecInput {
            id: &id(),
            image: Some(&img),
            layers: &layers,
        },
        &RunOptions {
            user: Some("nobody".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, SpecError::UnknownUser { .. }));
    // A symlinked /etc/passwd pointing at the host is not read.
    let evil = dir.path().join("evil");
    std::fs::create_dir_all(evil.join("etc")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", evil.join("etc/passwd")).unwrap();
    let err = build_spec(
        SpecInput {
            id: &id(),
            image: Some(&img),
            layers: &[evil],
        },
        &RunOptions {
            user: Some("root".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, SpecError::UnknownUser { .. }), "{err}");
}
