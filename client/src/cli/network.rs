//! `bay run`'s network flags: docker's `--network`, `-p`, `-P`, `--dns`,
//! `--dns-search`, `--dns-option` and `--add-host`, parsed into the
//! runtime's typed options (bad values fail here, before anything runs).

use bay_runtime::RunOptions;
use bay_runtime::network::{ExtraHost, PortMapping, parse_dns, parse_dns_option, parse_dns_search};
use bay_runtime::spec::NetworkMode;
use clap::Args;

/// The network flags of `docker run`.
#[derive(Args, Debug, Default)]
pub struct NetworkArgs {
    /// Connect a container to a network (bridge, none, host)
    #[arg(long, visible_alias = "net")]
    network: Option<String>,
    /// Publish a container's port(s) to the host ([IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp])
    #[arg(short = 'p', long = "publish", value_name = "PORT")]
    publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Set custom DNS servers
    #[arg(long)]
    dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long)]
    dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long, alias = "dns-opt")]
    dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip, ip may be host-gateway)
    #[arg(long, value_name = "HOST:IP")]
    add_host: Vec<String>,
}

impl NetworkArgs {
    /// Writes these flags into `opts`.
    pub fn apply(&self, opts: &mut RunOptions) -> anyhow::Result<()> {
        if let Some(n) = &self.network {
            opts.network = n.parse::<NetworkMode>()?;
        }
        let net = &mut opts.network_options;
        for p in &self.publish {
            net.publish.push(p.parse::<PortMapping>()?);
        }
        net.publish_all = self.publish_all;
        for d in &self.dns {
            net.dns.push(parse_dns(d)?);
        }
        for d in &self.dns_search {
            net.dns_search.push(parse_dns_search(d)?);
        }
        for d in &self.dns_option {
            net.dns_options.push(parse_dns_option(d)?);
        }
        for h in &self.add_host {
            net.extra_hosts.push(h.parse::<ExtraHost>()?);
        }
        let publishes = !net.publish.is_empty() || net.publish_all;
        if publishes && opts.network != NetworkMode::Bridge {
            anyhow::bail!("published ports need the bridge network (--network bridge)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        net: NetworkArgs,
    }

    fn opts(args: &[&str]) -> anyhow::Result<RunOptions> {
        let cli = Cli::try_parse_from(std::iter::once("bay").chain(args.iter().copied()))?;
        let mut o = RunOptions::default();
        cli.net.apply(&mut o)?;
        Ok(o)
    }

    #[test]
    fn flags_reach_the_run_options() {
        let o = opts(&[
            "-p",
            "127.0.0.1:8080:80",
            "--publish",
            "53/udp",
            "-P",
            "--dns",
            "1.1.1.1",
            "--dns-search",
            "corp.example",
            "--dns-option",
            "ndots:2",
            "--add-host",
            "db:10.0.0.5",
        ])
        .unwrap();
        let n = &o.network_options;
        assert_eq!(n.publish.len(), 2);
        assert_eq!(n.publish[0].host_port, Some(8080));
        assert!(n.publish_all);
        assert_eq!(n.dns[0].to_string(), "1.1.1.1");
        assert_eq!(n.dns_search, ["corp.example"]);
        assert_eq!(n.dns_options, ["ndots:2"]);
        assert_eq!(n.extra_hosts[0].name, "db");
        assert_eq!(opts(&["--net", "none"]).unwrap().network, NetworkMode::None);
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            &["-p", "99999"][..],
            &["--dns", "resolver.example"],
            &["--add-host", "nohost"],
            &["--network", "overlay"],
            &["--network", "host", "-p", "80"],
        ] {
            assert!(opts(bad).is_err(), "{bad:?}");
        }
    }
}
