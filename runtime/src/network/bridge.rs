//! The bridge network's life cycle around a container start: [`Network`]
//! prepares (lease, files, mounts) before `clone3`, attaches (veth,
//! address, route, port rules) while the child waits on its sync pipe, and
//! releases when the container's process is gone.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use oci_spec::runtime::{LinuxNamespaceType, Mount, MountBuilder, Spec};

use super::files;
use super::iptables::{self, Iptables, IptablesError, Rule};
use super::leases::{self, Lease, LeaseError, LeaseStore, Leases};
use super::netlink::{Netlink, NetlinkError};
use super::options::{NetworkOptions, PortMapping, Protocol};
use crate::id::ContainerId;

/// The default bridge's name.
pub const DEFAULT_BRIDGE: &str = "bay0";
/// Where leases live by default (host-global: the bridge is).
pub const DEFAULT_STATE_DIR: &str = "/run/bay/network";
/// The container's interface name.
pub const CONTAINER_IFNAME: &str = "eth0";

/// Subnets tried, in order, when none is configured: 172.31.0.0/16 down to
/// 172.18.0.0/16 (docker's own 172.17 is left to docker).
pub fn default_subnets() -> impl Iterator<Item = Ipv4Net> {
    (18..=31u8)
        .rev()
        .filter_map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).ok())
}

/// A bridge network failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// A netlink request failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// An iptables rule could not be added.
    #[error(transparent)]
    Iptables(#[from] IptablesError),
    /// The leases file failed.
    #[error(transparent)]
    Lease(#[from] LeaseError),
    /// A host file operation failed.
    #[error("{op} {path}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The configured subnet overlaps a route of the host.
    #[error("subnet {subnet} overlaps the host route {route}; configure another bridge subnet")]
    SubnetClash {
        /// The subnet.
        subnet: Ipv4Net,
        /// The route it overlaps.
        route: Ipv4Net,
    },
    /// Every default subnet overlaps a route of the host.
    #[error("no free private /16 for {bridge} (172.18-31.0.0 all overlap host routes)")]
    NoFreeSubnet {
        /// The bridge.
        bridge: String,
    },
    /// The bridge exists with another subnet than configured.
    #[error("bridge {bridge} has address {found}, not the configured {want}")]
    BridgeMismatch {
        /// The bridge.
        bridge: String,
        /// Its address.
        found: Ipv4Net,
        /// The configured one.
        want: Ipv4Net,
    },
    /// No address is left in the subnet.
    #[error("no free address left in {subnet}")]
    Exhausted {
        /// The subnet.
        subnet: Ipv4Net,
    },
    /// Another container publishes the port.
    #[error("Bind for {addr} failed: port is already allocated")]
    PortAllocated {
        /// `ip:port`.
        addr: String,
    },
    /// A host process holds the port.
    #[error("cannot publish {addr}")]
    PortUnavailable {
        /// `ip:port`.
        addr: String,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NetworkError {
    let path = path.to_path_buf();
    move |source| NetworkError::Io { op, path, source }
}

/// Where and how the bridge network is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// The bridge (at most 15 bytes).
    pub bridge: String,
    /// Its subnet; `None` adopts the bridge's existing address or picks the
    /// first of [`default_subnets`] that clashes with no host route.
    pub subnet: Option<Ipv4Net>,
    /// Where the leases of each bridge live (shared by all runtimes using
    /// the bridge).
    pub state_dir: PathBuf,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            bridge: DEFAULT_BRIDGE.to_owned(),
            subnet: None,
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
        }
    }
}

/// The network mode recorded in a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bridge,
    None,
    Host,
}

fn mode_of(spec: &Spec) -> Mode {
    let own_netns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
    let annotated = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get("org.bay.network"))
        .map(String::as_str);
    match (own_netns, annotated) {
        (false, _) => Mode::Host,
        (true, Some("bridge")) => Mode::Bridge,
        (true, _) => Mode::None,
    }
}

/// A container's bridge attachment, decided before its start.
#[derive(Debug, Clone)]
struct Attachment {
    id: String,
    ip: Ipv4Addr,
    gateway: Ipv4Addr,
    prefix: u8,
    veth: String,
    rules: Vec<Rule>,
}

/// What [`Network::prepare`] decided for one start.
#[derive(Debug, Clone)]
pub struct Prepared {
    mounts: Vec<Mount>,
    attach: Option<Attachment>,
}

impl Prepared {
    /// Adds the hosts/hostname/resolv.conf bind mounts to the spec used for
    /// this start.
    pub fn apply_mounts(&self, spec: &mut Spec) {
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        mounts.extend(self.mounts.iter().cloned());
        spec.set_mounts(Some(mounts));
    }

    /// Whether [`Network::attach`] must run between clone and exec.
    pub fn needs_attach(&self) -> bool {
        self.attach.is_some()
    }

    /// The container's address on the bridge.
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.attach.as_ref().map(|a| a.ip)
    }
}

/// The bridge network of a runtime.
#[derive(Debug, Clone, Default)]
pub struct Network {
    cfg: NetworkConfig,
}

/// The host end of a container's veth: `bay` + 12 hex digits of its id.
pub fn veth_name(id: &str) -> String {
    format!("bay{}", id.get(..12).unwrap_or(id))
}

fn is_our_veth(name: &str) -> bool {
    name.len() == 15 && name.starts_with("bay") && name[3..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn write_sysctl(path: &str, value: &str) -> Result<(), NetworkError> {
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(path, value).map_err(io_err("write", Path::new(path)))
}

impl Network {
    /// A network with this configuration.
    pub fn new(cfg: NetworkConfig) -> Self {
        Self { cfg }
    }

    /// The configuration.
    pub fn config(&self) -> &NetworkConfig {
        &self.cfg
    }

    fn store(&self) -> LeaseStore {
        LeaseStore::new(self.cfg.state_dir.join(&self.cfg.bridge))
    }

    /// The lease of container `id`, if it has one (a snapshot).
    pub fn lease(&self, id: &ContainerId) -> Result<Option<Lease>, NetworkError> {
        Ok(self
            .store()
            .snapshot()?
            .leases
            .into_iter()
            .find(|l| l.id == id.as_str()))
    }

    /// Before `clone3`: writes the container's `/etc` files into `dir` and
    /// returns their mounts; in bridge mode also claims an address and the
    /// published ports.
    pub fn prepare(
        &self,
        id: &ContainerId,
        spec: &Spec,
        dir: &Path,
    ) -> Result<Prepared, NetworkError> {
        let mode = mode_of(spec);
        let opts = NetworkOptions::from_spec(spec);
        let hostname = spec
            .hostname()
            .clone()
            .unwrap_or_else(|| id.short().to_owned());
        let attach = match mode {
            Mode::Bridge => Some(self.claim(id, &opts)?),
            Mode::None | Mode::Host => None,
        };
        let (hosts, resolv) = match mode {
            Mode::Host => (
                files::host_mode_hosts(
                    &std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
                    &opts.extra_hosts,
                ),
                files::resolv_conf(&files::host_resolv_conf(), &opts, false),
            ),
            Mode::Bridge | Mode::None => (
                files::hosts(
                    &hostname,
                    attach.as_ref().map(|a| a.ip),
                    &opts.extra_hosts,
                    attach.as_ref().map(|a| a.gateway),
                ),
                files::resolv_conf(&files::host_resolv_conf(), &opts, true),
            ),
        };
        let taken: Vec<PathBuf> = spec
            .mounts()
            .iter()
            .flatten()
            .map(|m| m.destination().clone())
            .collect();
        let mut mounts = Vec::new();
        for (name, dest, content) in [
            ("hosts", "/etc/hosts", hosts),
            ("hostname", "/etc/hostname", format!("{hostname}\n")),
            ("resolv.conf", "/etc/resolv.conf", resolv),
        ] {
            let path = dir.join(name);
            let written = std::fs::write(&path, content).map_err(io_err("write", &path));
            if let Err(e) = written {
                if let Some(a) = &attach {
                    let _ = self.release_id(&a.id);
                }
                return Err(e);
            }
            if taken.iter().any(|t| t == Path::new(dest)) {
                continue;
            }
            if let Ok(m) = MountBuilder::default()
                .destination(dest)
                .typ("bind")
                .source(&path)
                .options(vec!["rbind".to_owned(), "rprivate".to_owned()])
                .build()
            {
                mounts.push(m);
            }
        }
        Ok(Prepared { mounts, attach })
    }

    /// Under the leases lock: reclaims stale leases, makes sure the bridge
    /// and its rules exist, and records a pending lease for `id`.
    fn claim(&self, id: &ContainerId, opts: &NetworkOptions) -> Result<Attachment, NetworkError> {
        let ipt = Iptables::find()?;
        let mut nl = Netlink::open()?;
        let store = self.store();
        let locked = store.lock()?;
        let mut leases = locked.load()?;
        // A restart of the same container replaces its old lease.
        let (old, kept): (Vec<Lease>, Vec<Lease>) =
            leases.leases.into_iter().partition(|l| l.id == id.as_str());
        leases.leases = kept;
        let stale = self.reap(&mut leases, &ipt, &mut nl);
        for l in &old {
            self.undo(l, &ipt, &mut nl);
        }
        let (bridge_idx, subnet) = self.ensure_bridge(&mut nl, &ipt)?;
        self.sweep_veths(&mut nl, bridge_idx, &leases);
        if stale > 0 || !old.is_empty() {
            locked.save(&leases)?;
        }
        let gateway = gateway_of(subnet);
        let ip = leases
            .free_address(subnet.trunc(), gateway)
            .ok_or(NetworkError::Exhausted { subnet })?;
        let ports = resolve_ports(&leases, &opts.publish)?;
        let tag = id.short().to_owned();
        let rules: Vec<Rule> = ports
            .iter()
            .flat_map(|p| {
                iptables::port_rules(
                    &tag,
                    ip,
                    p.host_ip,
                    p.host_port.unwrap_or(0),
                    p.container_port,
                    p.protocol,
                )
            })
            .collect();
        let me = std::process::id() as i32;
        let veth = veth_name(id.as_str());
        leases.subnet = Some(subnet.trunc());
        leases.leases.push(Lease {
            id: id.as_str().to_owned(),
            ip,
            veth: veth.clone(),
            pid: me,
            pid_start: leases::proc_start_time(me),
            boot_id: leases::boot_id(),
            pending_since: Some(leases::now()),
            ports,
            rules: rules.clone(),
        });
        locked.save(&leases)?;
        tracing::debug!(id = %id, %ip, "address leased");
        Ok(Attachment {
            id: id.as_str().to_owned(),
            ip,
            gateway,
            prefix: subnet.prefix_len(),
            veth,
            rules,
        })
    }

    /// Removes the leases whose process is gone, undoing their rules and
    /// links. Returns how many.
    fn reap(&self, leases: &mut Leases, ipt: &Iptables, nl: &mut Netlink) -> usize {
        let boot = leases::boot_id();
        let now = leases::now();
        let (live, stale): (Vec<Lease>, Vec<Lease>) = std::mem::take(&mut leases.leases)
            .into_iter()
            .partition(|l| l.is_live(&boot, now));
        leases.leases = live;
        for l in &stale {
            tracing::info!(id = %l.id, ip = %l.ip, "reclaiming the lease of a container that is gone");
            self.undo(l, ipt, nl);
        }
        stale.len()
    }

    /// Deletes a lease's rules and its veth (if still there).
    fn undo(&self, l: &Lease, ipt: &Iptables, nl: &mut Netlink) {
        for r in &l.rules {
            if let Err(e) = ipt.delete(r) {
                tracing::warn!(id = %l.id, error = %e, "could not delete a port rule");
            }
        }
        match nl.del_link(&l.veth) {
            Ok(_) => {}
            Err(e) => tracing::warn!(veth = %l.veth, error = %e, "could not delete veth"),
        }
    }

    /// Deletes veths enslaved to our bridge that no live lease names (their
    /// container's namespace outlived its lease).
    fn sweep_veths(&self, nl: &mut Netlink, bridge_idx: u32, leases: &Leases) {
        let Ok(names) = nl.link_names() else {
            return;
        };
        for name in names.into_iter().filter(|n| is_our_veth(n)) {
            if leases.leases.iter().any(|l| l.veth == name) {
                continue;
            }
            let Ok(Some(idx)) = nl.link_index(&name) else {
                continue;
            };
            if nl.link_master(idx).ok().flatten() == Some(bridge_idx) {
                tracing::info!(veth = %name, "deleting a veth no lease owns");
                let _ = nl.del_link(&name);
            }
        }
    }

    /// Creates the bridge, its address and the shared rules when missing.
    /// Returns its index and subnet (with the gateway as address).
    fn ensure_bridge(
        &self,
        nl: &mut Netlink,
        ipt: &Iptables,
    ) -> Result<(u32, Ipv4Net), NetworkError> {
        let name = &self.cfg.bridge;
        let (idx, created) = match nl.link_index(name)? {
            Some(i) => (i, false),
            None => {
                match nl.add_bridge(name) {
                    Ok(()) => {}
                    Err(e) if e.errno() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                let idx = nl
                    .link_index(name)?
                    .ok_or(NetlinkError::Decode { op: "bridge index" })?;
                tracing::info!(bridge = %name, "bridge created");
                (idx, true)
            }
        };
        let addrs = nl.addresses4(idx)?;
        let existing = addrs
            .iter()
            .filter_map(|(ip, p)| Ipv4Net::new(*ip, *p).ok())
            .next();
        let subnet = match (existing, self.cfg.subnet) {
            (Some(have), Some(want)) if have.trunc() != want.trunc() => {
                return Err(NetworkError::BridgeMismatch {
                    bridge: name.clone(),
                    found: have,
                    want,
                });
            }
            (Some(have), _) => have,
            (None, want) => {
                let subnet = self.pick_subnet(nl, idx, want)?;
                let gw = gateway_of(subnet);
                match nl.add_address4(idx, gw, subnet.prefix_len()) {
                    Ok(()) => {}
                    Err(e) if e.errno() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                Ipv4Net::new(gw, subnet.prefix_len()).unwrap_or(subnet)
            }
        };
        if created || existing.is_none() {
            nl.set_up(idx, None)?;
        }
        // Docker's host settings: forwarding for outbound NAT, and loopback
        // sources allowed out of the bridge for published ports.
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"),
            "1",
        )?;
        // One iptables-save per start; rules are added only when missing
        // (a firewall reload may have flushed them).
        let rules = iptables::bridge_rules(name, subnet.trunc());
        let save = ipt.save()?;
        let missing: Vec<&Rule> = rules
            .iter()
            .filter(|r| !iptables::present(&save, r))
            .collect();
        if !missing.is_empty() {
            for (table, chain) in iptables::CHAINS {
                if !iptables::chain_present(&save, table, chain) {
                    ipt.ensure_chain(table, chain)?;
                }
            }
            for r in missing {
                ipt.ensure(r)?;
            }
            tracing::info!(bridge = %name, "NAT rules installed");
        }
        Ok((idx, subnet))
    }

    fn pick_subnet(
        &self,
        nl: &mut Netlink,
        bridge_idx: u32,
        want: Option<Ipv4Net>,
    ) -> Result<Ipv4Net, NetworkError> {
        let routes: Vec<Ipv4Net> = nl
            .routes4()?
            .into_iter()
            .filter(|r| r.prefix > 0 && r.oif != Some(bridge_idx))
            .filter_map(|r| Ipv4Net::new(r.dst, r.prefix).ok())
            .collect();
        let clash = |s: &Ipv4Net| {
            routes
                .iter()
                .find(|r| r.contains(&s.network()) || s.contains(&r.network()))
                .copied()
        };
        match want {
            Some(s) => match clash(&s) {
                Some(route) => Err(NetworkError::SubnetClash { subnet: s, route }),
                None => Ok(s.trunc()),
            },
            None => default_subnets()
                .find(|s| clash(s).is_none())
                .ok_or_else(|| NetworkError::NoFreeSubnet {
                    bridge: self.cfg.bridge.clone(),
                }),
        }
    }

    /// After `clone3`, before the child execs: the veth pair (the peer
    /// created inside the child's namespace as `eth0`), its address and
    /// default route, and the port rules; the lease passes to the child.
    pub fn attach(&self, prepared: &Prepared, pid: i32) -> Result<(), NetworkError> {
        let Some(a) = &prepared.attach else {
            return Ok(());
        };
        let r = self.attach_inner(a, pid);
        if r.is_err() {
            let _ = self.release_id(&a.id);
        }
        r
    }

    fn attach_inner(&self, a: &Attachment, pid: i32) -> Result<(), NetworkError> {
        let started = std::time::Instant::now();
        let ns_path = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let netns = std::fs::File::open(&ns_path).map_err(io_err("open", &ns_path))?;
        let mut host = Netlink::open()?;
        match host.add_veth(&a.veth, CONTAINER_IFNAME, netns.as_raw_fd()) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(libc::EEXIST) => {
                // A leftover of an earlier start of this container.
                host.del_link(&a.veth)?;
                host.add_veth(&a.veth, CONTAINER_IFNAME, netns.as_raw_fd())?;
            }
            Err(e) => return Err(e.into()),
        }
        let bridge = host
            .link_index(&self.cfg.bridge)?
            .ok_or(NetlinkError::Decode { op: "bridge index" })?;
        let veth = host
            .link_index(&a.veth)?
            .ok_or(NetlinkError::Decode { op: "veth index" })?;
        host.set_up(veth, Some(bridge))?;
        let mut ctr = Netlink::open_in(netns.as_fd())?;
        let eth0 = ctr
            .link_index(CONTAINER_IFNAME)?
            .ok_or(NetlinkError::Decode { op: "eth0 index" })?;
        ctr.add_address4(eth0, a.ip, a.prefix)?;
        ctr.set_up(eth0, None)?;
        ctr.add_default_route(a.gateway)?;
        let t_links = started.elapsed();
        if !a.rules.is_empty() {
            let ipt = Iptables::find()?;
            for r in &a.rules {
                ipt.ensure(r)?;
            }
        }
        let store = self.store();
        let locked = store.lock()?;
        let mut leases = locked.load()?;
        if let Some(l) = leases.leases.iter_mut().find(|l| l.id == a.id) {
            l.pid = pid;
            l.pid_start = leases::proc_start_time(pid);
            l.pending_since = None;
        }
        locked.save(&leases)?;
        tracing::debug!(id = %a.id, ip = %a.ip, ?t_links, elapsed = ?started.elapsed(), "network attached");
        Ok(())
    }

    /// Releases container `id`'s lease, port rules and veth (idempotent:
    /// nothing to do if it has none).
    pub fn release(&self, id: &ContainerId) -> Result<(), NetworkError> {
        self.release_id(id.as_str())
    }

    fn release_id(&self, id: &str) -> Result<(), NetworkError> {
        let store = self.store();
        if !store.dir().join("leases.json").exists() {
            return Ok(());
        }
        let locked = store.lock()?;
        let mut leases = locked.load()?;
        let (gone, kept): (Vec<Lease>, Vec<Lease>) =
            leases.leases.into_iter().partition(|l| l.id == id);
        leases.leases = kept;
        if gone.is_empty() {
            return Ok(());
        }
        let ipt = Iptables::find()?;
        let mut nl = Netlink::open()?;
        for l in &gone {
            self.undo(l, &ipt, &mut nl);
            tracing::debug!(id = %l.id, ip = %l.ip, "lease released");
        }
        locked.save(&leases)?;
        Ok(())
    }

    /// Reclaims the leases (rules, veths) of containers whose process is
    /// gone. Returns how many were reclaimed.
    pub fn gc(&self) -> Result<usize, NetworkError> {
        let store = self.store();
        if !store.dir().join("leases.json").exists() {
            return Ok(0);
        }
        let locked = store.lock()?;
        let mut leases = locked.load()?;
        let ipt = Iptables::find()?;
        let mut nl = Netlink::open()?;
        let n = self.reap(&mut leases, &ipt, &mut nl);
        if n > 0 {
            locked.save(&leases)?;
        }
        Ok(n)
    }
}

/// The gateway: the subnet's first host address.
fn gateway_of(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()).saturating_add(1))
}

/// Resolves ephemeral host ports and checks every port is free: neither
/// published by another container nor bound by a host process.
fn resolve_ports(
    leases: &Leases,
    publish: &[PortMapping],
) -> Result<Vec<PortMapping>, NetworkError> {
    let mut out: Vec<PortMapping> = Vec::new();
    for m in publish {
        let ip = m.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let probe = |port: u16| -> Result<u16, std::io::Error> {
            let addr = SocketAddrV4::new(ip, port);
            match m.protocol {
                Protocol::Tcp => TcpListener::bind(addr)?.local_addr().map(|a| a.port()),
                Protocol::Udp => UdpSocket::bind(addr)?.local_addr().map(|a| a.port()),
            }
        };
        let show = |port: u16| format!("{ip}:{port}");
        let mine = Leases {
            subnet: None,
            leases: vec![Lease {
                id: String::new(),
                ip: Ipv4Addr::UNSPECIFIED,
                veth: String::new(),
                pid: 0,
                pid_start: None,
                boot_id: String::new(),
                pending_since: None,
                ports: out.clone(),
                rules: Vec::new(),
            }],
        };
        let host_port = match m.host_port {
            Some(p) => {
                if leases.port_taken(m, p) || mine.port_taken(m, p) {
                    return Err(NetworkError::PortAllocated { addr: show(p) });
                }
                probe(p).map_err(|source| NetworkError::PortUnavailable {
                    addr: show(p),
                    source,
                })?
            }
            None => {
                let mut found = None;
                for _ in 0..32 {
                    let p = probe(0).map_err(|source| NetworkError::PortUnavailable {
                        addr: show(0),
                        source,
                    })?;
                    if !leases.port_taken(m, p) && !mine.port_taken(m, p) {
                        found = Some(p);
                        break;
                    }
                }
                found.ok_or(NetworkError::PortAllocated { addr: show(0) })?
            }
        };
        out.push(PortMapping {
            host_port: Some(host_port),
            ..*m
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_subnets_start_at_172_31() {
        let v: Vec<_> = default_subnets().collect();
        assert_eq!(v.first().unwrap().to_string(), "172.31.0.0/16");
        assert_eq!(v.last().unwrap().to_string(), "172.18.0.0/16");
        assert_eq!(gateway_of(v[0]), Ipv4Addr::new(172, 31, 0, 1));
    }

    #[test]
    fn veth_names_fit_ifnamsiz_and_are_recognised() {
        let n = veth_name("0123456789abcdef0123");
        assert_eq!(n, "bay0123456789ab");
        assert!(n.len() <= 15 && is_our_veth(&n));
        assert!(!is_our_veth("bay0"));
        assert!(!is_our_veth("eth0"));
    }

    #[test]
    fn ports_resolve_ephemeral_and_refuse_duplicates() {
        let leases = Leases::default();
        let m: PortMapping = "127.0.0.1::80".parse().unwrap();
        let got = resolve_ports(&leases, &[m]).unwrap();
        assert!(got[0].host_port.unwrap() > 0);
        // A port a host process holds is refused.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let held = l.local_addr().unwrap().port();
        let m: PortMapping = format!("127.0.0.1:{held}:80").parse().unwrap();
        assert!(matches!(
            resolve_ports(&leases, &[m]),
            Err(NetworkError::PortUnavailable { .. })
        ));
        drop(l);
        // The same port twice in one run is refused.
        assert!(matches!(
            resolve_ports(&leases, &[m, m]),
            Err(NetworkError::PortAllocated { .. })
        ));
    }
}
