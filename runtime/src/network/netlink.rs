//! A small synchronous rtnetlink client: exactly the link, address and
//! route operations the bridge network needs, built from
//! `netlink-packet-route` messages and sent over a `netlink-sys` socket.
//!
//! rtnetlink (the crate) wraps the same messages but only asynchronously
//! on tokio; the runtime is synchronous and runs inside and outside tokio
//! runtimes alike, so requests are written and their ACKs read here, one at
//! a time (a request and its reply are a few hundred bytes).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{BorrowedFd, RawFd};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// A failed netlink request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetlinkError {
    /// The socket failed.
    #[error("netlink socket: {op}")]
    Socket {
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused the request.
    #[error("netlink {op}: {source}")]
    Refused {
        /// The request.
        op: &'static str,
        /// The kernel's errno.
        #[source]
        source: std::io::Error,
    },
    /// A reply could not be decoded.
    #[error("netlink {op}: undecodable reply")]
    Decode {
        /// The request.
        op: &'static str,
    },
}

impl NetlinkError {
    /// The errno the kernel answered with, if it refused the request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Refused { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// An IPv4 route of the host, for the subnet clash check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route4 {
    /// Destination network.
    pub dst: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
    /// The output interface.
    pub oif: Option<u32>,
}

/// A netlink route socket in the network namespace it was opened in.
pub struct Netlink {
    sock: Socket,
    seq: u32,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink").field("seq", &self.seq).finish()
    }
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Self, NetlinkError> {
        let sock_err = |op| move |source| NetlinkError::Socket { op, source };
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(sock_err("socket"))?;
        sock.bind_auto().map_err(sock_err("bind"))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(sock_err("connect"))?;
        Ok(Self { sock, seq: 0 })
    }

    /// Opens a socket in the network namespace `netns` (an open
    /// `/proc/<pid>/ns/net`), from a short-lived thread that enters it: the
    /// socket stays bound to that namespace, our own threads never move.
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Self, NetlinkError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                    NetlinkError::Socket {
                        op: "setns",
                        source: e.into(),
                    }
                })?;
                Self::open()
            })
            .join()
            .unwrap_or(Err(NetlinkError::Decode { op: "setns thread" }))
        })
    }

    /// Sends one request and collects the replies until its ACK (or, for a
    /// dump, its DONE).
    fn request(
        &mut self,
        op: &'static str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock
            .send(&buf, 0)
            .map_err(|source| NetlinkError::Socket { op: "send", source })?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut out = Vec::new();
        let mut rbuf: Vec<u8> = Vec::with_capacity(1 << 16);
        loop {
            rbuf.clear();
            let n = self
                .sock
                .recv(&mut rbuf, 0)
                .map_err(|source| NetlinkError::Socket { op: "recv", source })?;
            let data = rbuf.get(..n.min(rbuf.len())).unwrap_or(&[]);
            let mut off = 0;
            while off < data.len() {
                let rest = data.get(off..).unwrap_or(&[]);
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest)
                    .map_err(|_| NetlinkError::Decode { op })?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err(NetlinkError::Decode { op });
                }
                off += (len + 3) & !3;
                if reply.header.sequence_number != self.seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(out),
                        Some(_) => {
                            return Err(NetlinkError::Refused {
                                op,
                                source: e.to_io(),
                            });
                        }
                    },
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(m) => {
                        out.push(m);
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// The index of the link called `name`, if there is one.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.request("get link", RouteNetlinkMessage::GetLink(m), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The master (bridge) index of the link `index`.
    pub fn link_master(&mut self, index: u32) -> Result<Option<u32>, NetlinkError> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        let replies = self.request("get link", RouteNetlinkMessage::GetLink(m), 0)?;
        Ok(replies.into_iter().find_map(|r| match r {
            RouteNetlinkMessage::NewLink(l) => l.attributes.into_iter().find_map(|a| match a {
                LinkAttribute::Controller(c) => Some(c),
                _ => None,
            }),
            _ => None,
        }))
    }

    /// Names of all links (for the stale-veth sweep).
    pub fn link_names(&mut self) -> Result<Vec<String>, NetlinkError> {
        let replies = self.request(
            "dump links",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => l.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    fn new_link(&mut self, op: &'static str, m: LinkMessage) -> Result<(), NetlinkError> {
        self.request(
            op,
            RouteNetlinkMessage::NewLink(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Creates a bridge (`EEXIST` if it is there).
    pub fn add_bridge(&mut self, name: &str) -> Result<(), NetlinkError> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.new_link("add bridge", m)
    }

    /// Creates a veth pair `host` ↔ `peer`, the peer directly in the network
    /// namespace `peer_netns`.
    pub fn add_veth(
        &mut self,
        host: &str,
        peer: &str,
        peer_netns: RawFd,
    ) -> Result<(), NetlinkError> {
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.to_owned()));
        p.attributes.push(LinkAttribute::NetNsFd(peer_netns));
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(host.to_owned()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        self.new_link("add veth", m)
    }

    /// Sets link `index` up, optionally enslaving it to `master`.
    pub fn set_up(&mut self, index: u32, master: Option<u32>) -> Result<(), NetlinkError> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags |= LinkFlags::Up;
        m.header.change_mask |= LinkFlags::Up;
        if let Some(c) = master {
            m.attributes.push(LinkAttribute::Controller(c));
        }
        self.request("set link", RouteNetlinkMessage::SetLink(m), NLM_F_ACK)
            .map(drop)
    }

    /// Deletes link `name`; `Ok(false)` if it does not exist.
    pub fn del_link(&mut self, name: &str) -> Result<bool, NetlinkError> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.request("delete link", RouteNetlinkMessage::DelLink(m), NLM_F_ACK) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The IPv4 addresses (with prefix) on link `index`.
    pub fn addresses4(&mut self, index: u32) -> Result<Vec<(Ipv4Addr, u8)>, NetlinkError> {
        let mut q = AddressMessage::default();
        q.header.family = AddressFamily::Inet;
        let replies = self.request(
            "dump addresses",
            RouteNetlinkMessage::GetAddress(q),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => {
                    let prefix = a.header.prefix_len;
                    a.attributes.into_iter().find_map(|at| match at {
                        AddressAttribute::Local(IpAddr::V4(ip)) => Some((ip, prefix)),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Adds `ip/prefix` to link `index` (`EEXIST` if it is there).
    pub fn add_address4(
        &mut self,
        index: u32,
        ip: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Address(IpAddr::V4(ip)));
        m.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
        if prefix < 31 {
            let brd = Ipv4Addr::from(u32::MAX >> u32::from(prefix) | u32::from(ip));
            m.attributes.push(AddressAttribute::Broadcast(brd));
        }
        self.request(
            "add address",
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Adds the default route via `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<(), NetlinkError> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(
            "add route",
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Every IPv4 route in every table.
    pub fn routes4(&mut self) -> Result<Vec<Route4>, NetlinkError> {
        let mut q = RouteMessage::default();
        q.header.address_family = AddressFamily::Inet;
        let replies = self.request("dump routes", RouteNetlinkMessage::GetRoute(q), NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewRoute(m) => {
                    let prefix = m.header.destination_prefix_length;
                    let mut dst = Ipv4Addr::UNSPECIFIED;
                    let mut oif = None;
                    for a in m.attributes {
                        match a {
                            RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = d,
                            RouteAttribute::Oif(i) => oif = Some(i),
                            _ => {}
                        }
                    }
                    Some(Route4 { dst, prefix, oif })
                }
                _ => None,
            })
            .collect())
    }
}
