//! Building the OCI runtime spec (`config.json`) of a container from its
//! image config and `docker run`-style [`RunOptions`], with docker's
//! defaults: 14 capabilities, the default seccomp profile resolved for them,
//! 12 masked and 5 read-only paths, `/dev` as a small tmpfs with the default
//! devices, `/sys` and `/sys/fs/cgroup` read-only, private pid/mount/uts/
//! ipc/net/cgroup namespaces, and `--privileged` relaxing exactly what
//! docker relaxes. The spec is the single source of truth for `start`.

pub mod defaults;
mod options;
pub mod resources;
pub mod seccomp;
mod users;

pub(crate) use users::resolve as resolve_user;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceBuilder,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxNamespaceBuilder, LinuxNamespaceType, Mount,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};

pub use options::{
    MountSpec, NetworkMode, Resources, RunOptions, SeccompProfile, SecurityOpts, Ulimit,
    parse_bytes,
};

use crate::id::ContainerId;

/// Errors building a spec.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A flag value is malformed.
    #[error("invalid {flag} value {value:?}: {reason}")]
    BadOption {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is expected.
        reason: &'static str,
    },
    /// Neither the image nor the options give a command.
    #[error("no command specified")]
    NoCommand,
    /// An unknown capability name.
    #[error("unknown capability {name:?}")]
    UnknownCapability {
        /// The name.
        name: String,
    },
    /// `-u NAME` not found in the image.
    #[error("unable to find user {name}: no matching entries in passwd file")]
    UnknownUser {
        /// The name.
        name: String,
    },
    /// `-u :GROUP` not found in the image.
    #[error("unable to find group {name}: no matching entries in group file")]
    UnknownGroup {
        /// The name.
        name: String,
    },
    /// A resource flag docker would refuse (docker's message).
    #[error(transparent)]
    Resource(#[from] resources::ResourceError),
    /// A seccomp profile file could not be read.
    #[error("reading seccomp profile {path}")]
    ReadProfile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A seccomp profile is invalid.
    #[error(transparent)]
    Profile(#[from] seccomp::ProfileError),
    /// oci-spec refused a value.
    #[error("building the runtime spec")]
    Build {
        /// The cause.
        #[source]
        source: oci_spec::OciSpecError,
    },
}

impl From<oci_spec::OciSpecError> for SpecError {
    fn from(source: oci_spec::OciSpecError) -> Self {
        SpecError::Build { source }
    }
}

/// What a container is built from, besides its options.
#[derive(Debug, Clone, Copy)]
pub struct SpecInput<'a> {
    /// The container.
    pub id: &'a ContainerId,
    /// The image's config (`config` object of the image configuration),
    /// if there is an image.
    pub image: Option<&'a oci_spec::image::Config>,
    /// The image's layer directories, top first (for `-u NAME` lookups in
    /// `/etc/passwd` and `/etc/group`).
    pub layers: &'a [PathBuf],
}

fn cap_from(name: &str) -> Result<Capability, SpecError> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    serde_json::from_value(serde_json::Value::String(full)).map_err(|_| {
        SpecError::UnknownCapability {
            name: name.to_owned(),
        }
    })
}

/// The capability names (`CAP_…`) this kernel supports.
pub fn supported_caps() -> Vec<String> {
    let all = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
    let mut v: Vec<String> = all.iter().map(|c| c.to_string()).collect();
    v.sort();
    v
}

fn cap_name(c: &Capability) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The container's capability set after `--privileged`, `--cap-add` and
/// `--cap-drop` (docker's order: start from defaults or all, drop, add).
pub fn effective_caps(opts: &RunOptions) -> Result<HashSet<Capability>, SpecError> {
    let all: Vec<Capability> = supported_caps()
        .iter()
        .filter_map(|n| cap_from(n).ok())
        .collect();
    if opts.privileged {
        return Ok(all.into_iter().collect());
    }
    let is_all = |v: &[String]| v.iter().any(|c| c.eq_ignore_ascii_case("all"));
    let mut set: HashSet<Capability> = if is_all(&opts.cap_drop) {
        HashSet::new()
    } else {
        let mut s: HashSet<Capability> = defaults::DEFAULT_CAPS
            .iter()
            .map(|n| cap_from(n))
            .collect::<Result<_, _>>()?;
        for d in &opts.cap_drop {
            s.remove(&cap_from(d)?);
        }
        s
    };
    if is_all(&opts.cap_add) {
        set.extend(all);
    } else {
        for a in &opts.cap_add {
            set.insert(cap_from(a)?);
        }
    }
    Ok(set)
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        .build()?)
}

fn env_key(kv: &str) -> &str {
    kv.split_once('=').map_or(kv, |(k, _)| k)
}

fn merge_env(base: &mut Vec<String>, extra: &[String]) {
    for kv in extra {
        let k = env_key(kv);
        base.retain(|e| env_key(e) != k);
        base.push(kv.clone());
    }
}

/// Builds the runtime spec of a container.
pub fn build_spec(input: SpecInput<'_>, opts: &RunOptions) -> Result<Spec, SpecError> {
    let image = input.image;
    // Command: --entrypoint replaces the image's entrypoint and drops its cmd.
    let (entrypoint, image_cmd) = match &opts.entrypoint {
        Some(ep) => (ep.clone(), Vec::new()),
        None => (
            image
                .and_then(|c| c.entrypoint().clone())
                .unwrap_or_default(),
            image.and_then(|c| c.cmd().clone()).unwrap_or_default(),
        ),
    };
    let cmd = if opts.cmd.is_empty() {
        image_cmd
    } else {
        opts.cmd.clone()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }

    let hostname = opts
        .hostname
        .clone()
        .unwrap_or_else(|| input.id.short().to_owned());
    let user_spec = opts
        .user
        .clone()
        .or_else(|| image.and_then(|c| c.user().clone()))
        .filter(|u| !u.is_empty());
    let user = users::resolve(user_spec.as_deref(), input.layers)?;

    let mut env: Vec<String> = image.and_then(|c| c.env().clone()).unwrap_or_default();
    if !env.iter().any(|e| env_key(e) == "PATH") {
        env.insert(0, defaults::DEFAULT_PATH.to_owned());
    }
    merge_env(&mut env, &[format!("HOSTNAME={hostname}")]);
    if opts.tty {
        merge_env(&mut env, &["TERM=xterm".to_owned()]);
    }
    merge_env(&mut env, &opts.env);
    if !env.iter().any(|e| env_key(e) == "HOME") {
        env.push(format!("HOME={}", user.home));
    }

    let cwd = opts
        .workdir
        .clone()
        .or_else(|| image.and_then(|c| c.working_dir().clone()))
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    if !cwd.starts_with('/') {
        return Err(SpecError::BadOption {
            flag: "-w",
            value: cwd,
            reason: "the working directory must be absolute",
        });
    }

    let caps = effective_caps(opts)?;
    let cap_names: HashSet<String> = caps.iter().map(cap_name).collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps.clone())
        .inheritable(caps)
        .ambient(HashSet::new())
        .build()?;

    let (soft, hard) = defaults::DEFAULT_NOFILE;
    let our_hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, h)| h)
        .unwrap_or(hard);
    let mut limits: Vec<(PosixRlimitType, u64, u64)> = vec![(
        PosixRlimitType::RlimitNofile,
        soft.min(our_hard),
        hard.min(our_hard),
    )];
    for u in &opts.ulimits {
        limits.retain(|(t, _, _)| *t != u.kind);
        limits.push((u.kind, u.soft, u.hard));
    }
    let rlimits: Vec<_> = limits
        .into_iter()
        .map(|(typ, soft, hard)| {
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(soft)
                .hard(hard)
                .build()
        })
        .collect::<Result<_, _>>()?;

    let process = ProcessBuilder::default()
        .terminal(opts.tty)
        .user(
            UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .additional_gids(user.additional_gids.clone())
                .build()?,
        )
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(capabilities)
        .rlimits(rlimits)
        .no_new_privileges(opts.security.no_new_privileges)
        .build()?;

    // Mounts, in docker's order, then the user's.
    let shm = format!(
        "size={}",
        opts.shm_size.unwrap_or(defaults::DEFAULT_SHM_SIZE)
    );
    let sys_ro = if opts.privileged { "rw" } else { "ro" };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_ro],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_ro],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm],
        )?,
    ];
    for m in &opts.mounts {
        mounts.retain(|existing| existing.destination() != Path::new(m.target()));
        mounts.push(match m {
            MountSpec::Bind {
                source,
                target,
                read_only,
            } => {
                let mut o = vec!["rbind", "rprivate"];
                if *read_only {
                    o.push("ro");
                }
                mount(target, "bind", &source.to_string_lossy(), &o)?
            }
            MountSpec::Volume { target, .. } => {
                return Err(SpecError::BadOption {
                    flag: "-v",
                    value: target.clone(),
                    reason: "volume mounts must be resolved (VolumeStore::resolve) before the spec is built",
                });
            }
            MountSpec::Tmpfs { target, size, mode } => {
                let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
                if let Some(s) = size {
                    o.push(format!("size={s}"));
                }
                if let Some(m) = mode {
                    o.push(format!("mode={m:o}"));
                }
                let refs: Vec<&str> = o.iter().map(String::as_str).collect();
                mount(target, "tmpfs", "tmpfs", &refs)?
            }
        });
    }

    let mut namespaces = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
    ];
    if opts.network != NetworkMode::Host {
        namespaces.push(LinuxNamespaceType::Network);
    }
    let namespaces = namespaces
        .into_iter()
        .map(|t| LinuxNamespaceBuilder::default().typ(t).build())
        .collect::<Result<Vec<_>, _>>()?;

    let mut devices = Vec::new();
    for (path, major, minor) in defaults::DEFAULT_DEVICES {
        devices.push(
            LinuxDeviceBuilder::default()
                .path(path)
                .typ(LinuxDeviceType::C)
                .major(major)
                .minor(minor)
                .file_mode(0o666u32)
                .uid(0u32)
                .gid(0u32)
                .build()?,
        );
    }
    let mut device_rules = vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()?,
    ];
    if opts.privileged {
        let host = host_devices()?;
        devices.retain(|d| !host.iter().any(|h| h.path() == d.path()));
        devices.extend(host);
        device_rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .access("rwm")
                .build()?,
        );
    } else {
        for (typ, major, minor, access) in defaults::ALLOWED_DEVICE_RULES {
            let mut b = LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(if typ == "b" {
                    LinuxDeviceType::B
                } else {
                    LinuxDeviceType::C
                })
                .access(access);
            if let Some(m) = major {
                b = b.major(m);
            }
            if let Some(m) = minor {
                b = b.minor(m);
            }
            device_rules.push(b.build()?);
        }
    }

    let resources = resources::linux_resources(
        &opts.resources,
        &resources::HostCpus::detect(),
        device_rules,
    )?;

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .devices(devices)
        .resources(resources)
        .cgroups_path(PathBuf::from(format!("bay/{}", input.id)))
        .rootfs_propagation("rprivate");
    // The builder's defaults are youki's, so every field is set explicitly.
    let (masked, readonly): (Vec<String>, Vec<String>) = if opts.privileged {
        (Vec::new(), Vec::new())
    } else {
        (
            defaults::MASKED_PATHS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            defaults::READONLY_PATHS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        )
    };
    linux = linux.masked_paths(masked).readonly_paths(readonly);
    if opts.network != NetworkMode::Host {
        linux = linux.sysctl(
            defaults::NETNS_SYSCTLS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
        );
    }
    let profile = match (&opts.security.seccomp, opts.privileged) {
        (SeccompProfile::Unconfined, _) | (SeccompProfile::Default, true) => None,
        (SeccompProfile::Default, false) => Some(seccomp::resolve_profile(
            seccomp::DOCKER_DEFAULT_PROFILE,
            &cap_names,
        )?),
        (SeccompProfile::Json(json), _) => Some(seccomp::resolve_profile(json, &cap_names)?),
    };
    if let Some(p) = profile {
        linux = linux.seccomp(p);
    }

    let mut annotations = HashMap::new();
    annotations.insert(
        "org.bay.network".to_owned(),
        format!("{:?}", opts.network).to_lowercase(),
    );
    let mut net = opts.network_options.clone();
    net.expand_exposed(
        image
            .and_then(|c| c.exposed_ports().as_ref())
            .into_iter()
            .flatten()
            .map(String::as_str),
    );
    if net != crate::network::NetworkOptions::default()
        && let Ok(json) = serde_json::to_string(&net)
    {
        annotations.insert(crate::network::OPTIONS_ANNOTATION.to_owned(), json);
    }
    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(opts.read_only)
                .build()?,
        )
        .hostname(hostname)
        .process(process)
        .mounts(mounts)
        .linux(linux.build()?)
        .annotations(annotations)
        .build()?)
}

/// The host's device nodes, for `--privileged` (as docker's
/// `HostDevices()`: everything under `/dev` except `pts`, `shm`, `mqueue`
/// and the console).
fn host_devices() -> Result<Vec<oci_spec::runtime::LinuxDevice>, SpecError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let ft = md.file_type();
            if ft.is_dir() {
                let name = e.file_name();
                if !matches!(
                    name.to_str(),
                    Some("pts" | "shm" | "mqueue" | ".lxc" | ".lxd-mounts")
                ) {
                    stack.push(p);
                }
                continue;
            }
            let typ = if ft.is_char_device() {
                LinuxDeviceType::C
            } else if ft.is_block_device() {
                LinuxDeviceType::B
            } else {
                continue;
            };
            if p == Path::new("/dev/console") {
                continue;
            }
            let rdev = md.rdev();
            out.push(
                LinuxDeviceBuilder::default()
                    .path(p)
                    .typ(typ)
                    .major(i64::from(nix::sys::stat::major(rdev) as u32))
                    .minor(i64::from(nix::sys::stat::minor(rdev) as u32))
                    .file_mode(md.mode() & 0o777)
                    .uid(md.uid())
                    .gid(md.gid())
                    .build()?,
            );
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(out)
}

#[cfg(test)]
mod tests;
