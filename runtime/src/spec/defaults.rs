//! Docker's isolation defaults (moby `oci/defaults.go` and
//! `daemon/oci_linux.go`), as data. `runtime-facts.md` §1 lists them.

/// The 14 default capabilities; in a container `CapEff` reads
/// `00000000a80425fb`.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The bitmask of [`DEFAULT_CAPS`].
pub const DEFAULT_CAP_MASK: u64 = 0xa804_25fb;

/// Paths hidden from the container: a directory gets an empty read-only
/// tmpfs, a file gets `/dev/null` bound over it.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Paths bind-mounted read-only over themselves.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's default `PATH` when the image sets none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Default `/dev/shm` size (docker's `--shm-size` default, 64 MiB).
pub const DEFAULT_SHM_SIZE: u64 = 64 * 1024 * 1024;

/// The default device nodes created in the container's `/dev`
/// (path, major, minor, mode). `/dev/ptmx` is a symlink to `pts/ptmx`.
pub const DEFAULT_DEVICES: [(&str, i64, i64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Device cgroup rules allowed on top of "deny all": (type, major, minor,
/// access); `None` is a wildcard. Docker's list plus the OCI default
/// devices; FUSE (10:229) stays denied.
pub const ALLOWED_DEVICE_RULES: [(&str, Option<i64>, Option<i64>, &str); 12] = [
    ("c", None, None, "m"),
    ("b", None, None, "m"),
    ("c", Some(1), Some(3), "rwm"),
    ("c", Some(1), Some(5), "rwm"),
    ("c", Some(1), Some(7), "rwm"),
    ("c", Some(1), Some(8), "rwm"),
    ("c", Some(1), Some(9), "rwm"),
    ("c", Some(5), Some(0), "rwm"),
    ("c", Some(5), Some(1), "rwm"),
    ("c", Some(5), Some(2), "rwm"),
    ("c", Some(136), None, "rwm"),
    ("c", Some(10), Some(200), "rwm"),
];

/// Sysctls docker sets when the container has its own network namespace.
pub const NETNS_SYSCTLS: [(&str, &str); 2] = [
    ("net.ipv4.ip_unprivileged_port_start", "0"),
    ("net.ipv4.ping_group_range", "0 2147483647"),
];

/// Default `RLIMIT_NOFILE` (soft, hard): what docker ≥ 25 containers get
/// from containerd's unit; the hard limit is clamped to ours.
pub const DEFAULT_NOFILE: (u64, u64) = (1024, 524_288);
