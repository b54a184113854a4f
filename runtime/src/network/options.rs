//! The network flags of `docker run` as typed values: `-p`, `-P`, `--dns`,
//! `--dns-search`, `--dns-option` and `--add-host`, with parsers for their
//! command-line spellings. They travel from the CLI to `start` inside the
//! spec, as the JSON annotation [`OPTIONS_ANNOTATION`].

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The spec annotation carrying [`NetworkOptions`] as JSON.
pub const OPTIONS_ANNOTATION: &str = "org.bay.network.options";

/// A malformed network flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {flag} value {value:?}: {reason}")]
pub struct OptionError {
    /// The flag.
    pub flag: &'static str,
    /// The value given.
    pub value: String,
    /// What is expected.
    pub reason: &'static str,
}

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (the default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`, as iptables spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One `-p [IP:][HOST:]CTR[/tcp|udp]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// The host address to publish on; `None` is every local address
    /// (docker's `0.0.0.0`).
    pub host_ip: Option<Ipv4Addr>,
    /// The host port; `None` picks a free ephemeral port at start.
    pub host_port: Option<u16>,
    /// The container's port.
    pub container_port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

fn port(flag: &'static str, s: &str, whole: &str) -> Result<u16, OptionError> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(OptionError {
            flag,
            value: whole.to_owned(),
            reason: "ports are numbers from 1 to 65535",
        }),
    }
}

impl FromStr for PortMapping {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, OptionError> {
        let bad = |reason| OptionError {
            flag: "-p",
            value: s.to_owned(),
            reason,
        };
        let (spec, protocol) = match s.rsplit_once('/') {
            Some((spec, "tcp")) => (spec, Protocol::Tcp),
            Some((spec, "udp")) => (spec, Protocol::Udp),
            Some(_) => return Err(bad("the protocol must be tcp or udp")),
            None => (s, Protocol::Tcp),
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (ip, host, ctr) = match parts.as_slice() {
            [ctr] => (None, None, *ctr),
            [host, ctr] => (None, Some(*host), *ctr),
            [ip, host, ctr] => (Some(*ip), Some(*host), *ctr),
            _ => return Err(bad("expected [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]")),
        };
        let host_ip = match ip {
            None | Some("") | Some("0.0.0.0") => None,
            Some(ip) => Some(
                ip.parse::<Ipv4Addr>()
                    .map_err(|_| bad("the host address must be an IPv4 address"))?,
            ),
        };
        let host_port = match host {
            None | Some("") => None,
            Some(h) => Some(port("-p", h, s)?),
        };
        Ok(Self {
            host_ip,
            host_port,
            container_port: port("-p", ctr, s)?,
            protocol,
        })
    }
}

impl std::fmt::Display for PortMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        match self.host_port {
            Some(h) => write!(
                f,
                "{ip}:{h}->{}/{}",
                self.container_port,
                self.protocol.as_str()
            ),
            None => write!(
                f,
                "{ip}:?->{}/{}",
                self.container_port,
                self.protocol.as_str()
            ),
        }
    }
}

/// The address of an `--add-host` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostAddr {
    /// A literal address.
    Ip(IpAddr),
    /// docker's `host-gateway`: the bridge's gateway address.
    HostGateway,
}

/// One `--add-host NAME:IP` (docker also accepts `NAME=IP`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraHost {
    /// The host name.
    pub name: String,
    /// Its address.
    pub addr: HostAddr,
}

fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl FromStr for ExtraHost {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, OptionError> {
        let bad = |reason| OptionError {
            flag: "--add-host",
            value: s.to_owned(),
            reason,
        };
        // The name never contains ':' or '=', an IPv6 address does.
        let (name, addr) = s.split_once(['=', ':']).ok_or(bad("expected NAME:IP"))?;
        if !valid_hostname(name) {
            return Err(bad("the name must be a host name"));
        }
        let addr = match addr.trim_start_matches('[').trim_end_matches(']') {
            "host-gateway" => HostAddr::HostGateway,
            a => HostAddr::Ip(
                a.parse()
                    .map_err(|_| bad("expected an IP address or host-gateway"))?,
            ),
        };
        Ok(Self {
            name: name.to_owned(),
            addr,
        })
    }
}

/// Parses a `--dns` value.
pub fn parse_dns(s: &str) -> Result<IpAddr, OptionError> {
    s.parse().map_err(|_| OptionError {
        flag: "--dns",
        value: s.to_owned(),
        reason: "expected an IP address",
    })
}

/// Checks a `--dns-search` domain (`.` alone clears the host's search list,
/// as in docker).
pub fn parse_dns_search(s: &str) -> Result<String, OptionError> {
    if s == "." || valid_hostname(s.trim_end_matches('.')) {
        Ok(s.to_owned())
    } else {
        Err(OptionError {
            flag: "--dns-search",
            value: s.to_owned(),
            reason: "expected a domain name",
        })
    }
}

/// Checks a `--dns-option` value (one resolv.conf `options` word).
pub fn parse_dns_option(s: &str) -> Result<String, OptionError> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(s.to_owned())
    } else {
        Err(OptionError {
            flag: "--dns-option",
            value: s.to_owned(),
            reason: "expected one resolv.conf option word",
        })
    }
}

/// The container's network settings besides its mode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkOptions {
    /// `-p`.
    #[serde(default)]
    pub publish: Vec<PortMapping>,
    /// `-P`: publish every port the image exposes on an ephemeral port
    /// (expanded into `publish` by `build_spec`).
    #[serde(default)]
    pub publish_all: bool,
    /// `--dns` (replaces the host's nameservers).
    #[serde(default)]
    pub dns: Vec<IpAddr>,
    /// `--dns-search` (replaces the host's search list).
    #[serde(default)]
    pub dns_search: Vec<String>,
    /// `--dns-option` (replaces the host's options).
    #[serde(default)]
    pub dns_options: Vec<String>,
    /// `--add-host`.
    #[serde(default)]
    pub extra_hosts: Vec<ExtraHost>,
}

impl NetworkOptions {
    /// With `-P`, adds an ephemeral mapping for every exposed port
    /// (`"80/tcp"`, `"53/udp"`, `"8080"`) not already published.
    pub fn expand_exposed<'a>(&mut self, exposed: impl IntoIterator<Item = &'a str>) {
        if !self.publish_all {
            return;
        }
        for e in exposed {
            let Ok(m) = e.parse::<PortMapping>() else {
                continue;
            };
            if m.host_port.is_some() || m.host_ip.is_some() {
                continue;
            }
            if !self
                .publish
                .iter()
                .any(|p| p.container_port == m.container_port && p.protocol == m.protocol)
            {
                self.publish.push(m);
            }
        }
    }

    /// The options stored in a spec's annotations (defaults if absent or
    /// unreadable, which `build_spec` never writes).
    pub fn from_spec(spec: &oci_spec::runtime::Spec) -> Self {
        spec.annotations()
            .as_ref()
            .and_then(|a| a.get(OPTIONS_ANNOTATION))
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_port_mappings() {
        let m: PortMapping = "127.0.0.1:18080:80".parse().unwrap();
        assert_eq!(
            m,
            PortMapping {
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: Some(18080),
                container_port: 80,
                protocol: Protocol::Tcp
            }
        );
        let m: PortMapping = "8080:80/udp".parse().unwrap();
        assert_eq!(
            (m.host_ip, m.host_port, m.protocol),
            (None, Some(8080), Protocol::Udp)
        );
        let m: PortMapping = "80".parse().unwrap();
        assert_eq!((m.host_port, m.container_port), (None, 80));
        let m: PortMapping = "127.0.0.1::80".parse().unwrap();
        assert_eq!((m.host_ip, m.host_port), (Some(Ipv4Addr::LOCALHOST), None));
        let m: PortMapping = "0.0.0.0:80:80".parse().unwrap();
        assert_eq!(m.host_ip, None);
        for bad in [
            "",
            "0",
            "70000",
            "a:80",
            "1:2:3:4",
            "80/sctp",
            "localhost:80:80",
            "::1:80:80",
        ] {
            assert!(bad.parse::<PortMapping>().is_err(), "{bad}");
        }
        assert_eq!(m.to_string(), "0.0.0.0:80->80/tcp");
    }

    #[test]
    fn parses_extra_hosts_and_dns() {
        let h: ExtraHost = "db:10.0.0.5".parse().unwrap();
        assert_eq!(h.addr, HostAddr::Ip("10.0.0.5".parse().unwrap()));
        let h: ExtraHost = "v6:2001:db8::1".parse().unwrap();
        assert_eq!(h.addr, HostAddr::Ip("2001:db8::1".parse().unwrap()));
        let h: ExtraHost = "gw=host-gateway".parse().unwrap();
        assert_eq!((h.name.as_str(), h.addr), ("gw", HostAddr::HostGateway));
        for bad in ["nohost", "bad name:1.2.3.4", ":1.2.3.4", "x:notanip"] {
            assert!(bad.parse::<ExtraHost>().is_err(), "{bad}");
        }
        assert!(parse_dns("1.1.1.1").is_ok());
        assert!(parse_dns("dns.example").is_err());
        assert!(parse_dns_search("example.com").is_ok());
        assert!(parse_dns_search("bad domain").is_err());
        assert!(parse_dns_option("ndots:2").is_ok());
        assert!(parse_dns_option("two words").is_err());
    }

    #[test]
    fn publish_all_expands_exposed_ports() {
        let mut o = NetworkOptions {
            publish: vec!["8080:80".parse().unwrap()],
            publish_all: true,
            ..Default::default()
        };
        o.expand_exposed(["80/tcp", "53/udp", "bogus/x", "9000"]);
        let got: Vec<_> = o
            .publish
            .iter()
            .map(|p| (p.container_port, p.protocol, p.host_port))
            .collect();
        assert_eq!(
            got,
            [
                (80, Protocol::Tcp, Some(8080)),
                (53, Protocol::Udp, None),
                (9000, Protocol::Tcp, None)
            ]
        );
        let mut off = NetworkOptions::default();
        off.expand_exposed(["80/tcp"]);
        assert!(off.publish.is_empty());
    }
}
