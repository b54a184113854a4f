//! The per-container `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`,
//! as docker writes them (pure functions over the host's files, so they are
//! unit-tested without touching the host).

use std::net::{IpAddr, Ipv4Addr};

use super::options::{ExtraHost, HostAddr, NetworkOptions};

/// docker's fallback nameservers when the host has none usable.
pub const DEFAULT_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// The lines docker starts every generated `/etc/hosts` with.
const LOCALHOST_LINES: &str = "127.0.0.1\tlocalhost\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\n\
ff00::0\tip6-mcastprefix\n\
ff02::1\tip6-allnodes\n\
ff02::2\tip6-allrouters\n";

fn extra_lines(out: &mut String, extra: &[ExtraHost], gateway: Option<Ipv4Addr>) {
    for h in extra {
        let ip = match h.addr {
            HostAddr::Ip(ip) => Some(ip),
            HostAddr::HostGateway => gateway.map(IpAddr::V4),
        };
        if let Some(ip) = ip {
            out.push_str(&format!("{ip}\t{}\n", h.name));
        }
    }
}

/// `/etc/hosts` of a container with its own network namespace: localhost,
/// the `--add-host` entries, then its own address (if it has one) with its
/// hostname.
pub fn hosts(
    hostname: &str,
    own: Option<Ipv4Addr>,
    extra: &[ExtraHost],
    gateway: Option<Ipv4Addr>,
) -> String {
    let mut out = String::from(LOCALHOST_LINES);
    extra_lines(&mut out, extra, gateway);
    if let Some(ip) = own {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    out
}

/// `/etc/hosts` with the host's network: the host's own file plus the
/// `--add-host` entries.
pub fn host_mode_hosts(host_file: &str, extra: &[ExtraHost]) -> String {
    let mut out = host_file.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    extra_lines(&mut out, extra, None);
    out
}

fn is_loopback(ip: &IpAddr) -> bool {
    ip.is_loopback()
}

/// `/etc/resolv.conf` for a container, from the host's file.
///
/// With its own network namespace (`own_netns`), loopback nameservers
/// (127.x, ::1: a local resolver such as systemd-resolved's stub cannot be
/// reached from there) and IPv6 ones (the bridge has no IPv6) are dropped,
/// and docker's 8.8.8.8/8.8.4.4 are used if none is left. `--dns`,
/// `--dns-search` and `--dns-option` replace the host's lists.
pub fn resolv_conf(host_file: &str, opts: &NetworkOptions, own_netns: bool) -> String {
    let mut nameservers: Vec<String> = Vec::new();
    let mut search: Option<String> = None;
    let mut options: Option<String> = None;
    let mut other: Vec<&str> = Vec::new();
    for line in host_file.lines() {
        let t = line.trim();
        let mut words = t.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ns) = words.next() {
                    // Scoped addresses (fe80::1%eth0) parse after the zone goes.
                    let addr = ns.split('%').next().unwrap_or(ns);
                    match addr.parse::<IpAddr>() {
                        Ok(ip) if own_netns && (is_loopback(&ip) || ip.is_ipv6()) => {}
                        Ok(_) => nameservers.push(ns.to_owned()),
                        Err(_) => {}
                    }
                }
            }
            Some("search" | "domain") => search = Some(words.collect::<Vec<_>>().join(" ")),
            Some("options") => options = Some(words.collect::<Vec<_>>().join(" ")),
            _ => other.push(line),
        }
    }
    if !opts.dns.is_empty() {
        nameservers = opts.dns.iter().map(ToString::to_string).collect();
    } else if nameservers.is_empty() && own_netns {
        nameservers = DEFAULT_NAMESERVERS
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
    }
    if !opts.dns_search.is_empty() {
        search = if opts.dns_search.iter().any(|s| s == ".") {
            None
        } else {
            Some(opts.dns_search.join(" "))
        };
    }
    if !opts.dns_options.is_empty() {
        options = Some(opts.dns_options.join(" "));
    }
    let mut out = String::new();
    for line in other {
        if !line.trim().is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
    for ns in &nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if let Some(s) = search.filter(|s| !s.is_empty()) {
        out.push_str(&format!("search {s}\n"));
    }
    if let Some(o) = options.filter(|o| !o.is_empty()) {
        out.push_str(&format!("options {o}\n"));
    }
    out
}

/// The host's resolver file: `/etc/resolv.conf`, or systemd-resolved's
/// upstream list when the former only names its local stub (as docker does).
pub fn host_resolv_conf() -> String {
    let main = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let only_stub = main
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .all(|ns| ns.trim() == "127.0.0.53");
    if only_stub
        && main.contains("127.0.0.53")
        && let Ok(upstream) = std::fs::read_to_string("/run/systemd/resolve/resolv.conf")
    {
        return upstream;
    }
    main
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_has_localhost_extra_hosts_and_own_address() {
        let extra = vec![
            "db:10.0.0.5".parse().unwrap(),
            "gw:host-gateway".parse().unwrap(),
        ];
        let h = hosts(
            "box",
            Some("172.31.0.2".parse().unwrap()),
            &extra,
            Some("172.31.0.1".parse().unwrap()),
        );
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines[0], "127.0.0.1\tlocalhost");
        assert_eq!(lines[1], "::1\tlocalhost ip6-localhost ip6-loopback");
        assert_eq!(
            &lines[6..],
            ["10.0.0.5\tdb", "172.31.0.1\tgw", "172.31.0.2\tbox"]
        );
        let none = hosts("box", None, &[], None);
        assert!(!none.contains("box"));
        assert_eq!(none.lines().count(), 6);
        assert_eq!(
            host_mode_hosts("127.0.0.1 localhost", &extra[..1]),
            "127.0.0.1 localhost\n10.0.0.5\tdb\n"
        );
    }

    #[test]
    fn resolv_conf_drops_loopback_and_ipv6_and_falls_back() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch corp.example\noptions edns0 trust-ad\n";
        let r = resolv_conf(host, &NetworkOptions::default(), true);
        assert_eq!(
            r,
            "# generated\nnameserver 192.0.2.53\nsearch corp.example\noptions edns0 trust-ad\n"
        );
        let only_local = "nameserver 127.0.0.53\nsearch lan\n";
        let r = resolv_conf(only_local, &NetworkOptions::default(), true);
        assert_eq!(r, "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch lan\n");
        // The host's network keeps the host's resolver as it is.
        let r = resolv_conf(only_local, &NetworkOptions::default(), false);
        assert_eq!(r, "nameserver 127.0.0.53\nsearch lan\n");
    }

    #[test]
    fn resolv_conf_flags_replace_the_hosts_lists() {
        let host = "nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n";
        let opts = NetworkOptions {
            dns: vec!["1.1.1.1".parse().unwrap()],
            dns_search: vec!["a.example".into(), "b.example".into()],
            dns_options: vec!["ndots:2".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(host, &opts, true),
            "nameserver 1.1.1.1\nsearch a.example b.example\noptions ndots:2\n"
        );
        let clear = NetworkOptions {
            dns_search: vec![".".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(host, &clear, true),
            "nameserver 192.0.2.53\noptions edns0\n"
        );
    }
}
