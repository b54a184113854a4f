//! Container networking: docker's default bridge network, rebuilt.
//!
//! # What it owns
//! - **The bridge.** `bay0` (configurable), created on demand and
//!   idempotently over rtnetlink, with the gateway address (`.1` of a
//!   private subnet, 172.31.0.0/16 unless that clashes with a route of the
//!   host, then the next free /16 of 172.30 … 172.18). `route_localnet` is
//!   set on it so that DNAT'ed loopback traffic may leave through it, and
//!   `ip_forward` is enabled, as docker does.
//! - **Addresses.** One lease per running container in a host-global leases
//!   file (`/run/bay/network/<bridge>/leases.json`, under a `flock`),
//!   because the bridge is shared by every runtime root on the host. A lease
//!   names the container's init (pid, start time, boot id), so the leases of
//!   containers whose process is gone are found and reclaimed, with their
//!   veth and their iptables rules, at the next allocation.
//! - **The link.** A veth pair per container: the host end `bay<12 hex of
//!   the id>` enslaved to the bridge, the peer created directly in the
//!   container's network namespace as `eth0`, with its address and a default
//!   route via the gateway. This happens after `clone3` and before the
//!   child execs: the child waits on its sync pipe meanwhile.
//! - **NAT.** `iptables` (the binary, like docker; nft or legacy is whatever
//!   the host's `iptables` is) with our own chains `BAY-DNAT`,
//!   `BAY-POSTROUTING` (nat) and `BAY-FORWARD` (filter), each jump and rule
//!   tagged with a `bay` comment: MASQUERADE for the subnet out of any other
//!   interface, and for loopback sources into the bridge.
//! - **Published ports** (`-p [IP:][HOST:]CTR[/proto]`, `-P`): DNAT rules in
//!   `BAY-DNAT`, entered from both PREROUTING and OUTPUT for local
//!   destinations, so a port works from other hosts and from the host's own
//!   loopback without a proxy process per port (docker's
//!   `userland-proxy=false` mode). The rules are recorded in the lease and
//!   deleted with it.
//! - **Name resolution files.** `/etc/hosts`, `/etc/hostname` and
//!   `/etc/resolv.conf` written per container and bind-mounted, as docker
//!   does: the host's resolv.conf without loopback nameservers (which cannot
//!   work from another network namespace), falling back to 8.8.8.8/8.8.4.4;
//!   `--dns`, `--dns-search`, `--dns-option`, `--add-host`.
//!
//! Nothing here touches an interface, route or rule it did not create.

#[cfg(target_os = "linux")]
mod bridge;
pub mod files;
pub mod iptables;
pub mod leases;
mod options;

#[cfg(target_os = "linux")]
pub use bridge::{
    CONTAINER_IFNAME, DEFAULT_BRIDGE, DEFAULT_STATE_DIR, Network, NetworkConfig, NetworkError,
    Prepared, default_subnets, veth_name,
};
pub use options::{
    ExtraHost, HostAddr, NetworkOptions, OPTIONS_ANNOTATION, OptionError, PortMapping, Protocol,
    parse_dns, parse_dns_option, parse_dns_search,
};

#[cfg(target_os = "linux")]
pub mod netlink;
