//! The iptables rules of the bridge network, as data, and the `iptables`
//! binary that applies them.
//!
//! docker drives iptables through the binary too: the binary is whatever
//! the host chose (`iptables-nft` or `iptables-legacy` behind the
//! alternatives link), so our rules land in the same backend as the host's
//! own and never mix the two. Every rule carries a `bay` comment (`bay:<id>`
//! for a container's), and lives in our own chains except for the jumps
//! into them.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::options::Protocol;

/// nat chain holding the DNAT rules of published ports.
pub const DNAT_CHAIN: &str = "BAY-DNAT";
/// nat chain holding the MASQUERADE rules.
pub const POSTROUTING_CHAIN: &str = "BAY-POSTROUTING";
/// filter chain accepting the bridge's forwarded traffic.
pub const FORWARD_CHAIN: &str = "BAY-FORWARD";

/// An iptables failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IptablesError {
    /// No `iptables` binary.
    #[error("iptables is not installed (looked in PATH, /usr/sbin and /sbin)")]
    Missing,
    /// It could not be run.
    #[error("running {bin}")]
    Spawn {
        /// The binary.
        bin: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// It refused a rule.
    #[error("iptables {args}: {stderr}")]
    Failed {
        /// The arguments.
        args: String,
        /// What it said.
        stderr: String,
    },
}

/// One rule: table, chain and match/target arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// `nat` or `filter`.
    pub table: String,
    /// The chain.
    pub chain: String,
    /// Everything after the chain name.
    pub args: Vec<String>,
    /// Insert at the head of the chain instead of appending (for jumps into
    /// our chains from built-in chains the host may already populate).
    #[serde(default)]
    pub first: bool,
}

impl Rule {
    fn new(table: &str, chain: &str, args: &[&str]) -> Self {
        Self {
            table: table.to_owned(),
            chain: chain.to_owned(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            first: false,
        }
    }

    fn first(mut self) -> Self {
        self.first = true;
        self
    }

    fn cmd(&self, op: &str) -> Vec<String> {
        let mut v = vec![
            "-w".to_owned(),
            "-t".to_owned(),
            self.table.clone(),
            op.to_owned(),
            self.chain.clone(),
        ];
        if op == "-I" {
            v.push("1".to_owned());
        }
        v.extend(self.args.iter().cloned());
        v
    }
}

/// The `iptables` binary.
#[derive(Debug, Clone)]
pub struct Iptables {
    bin: PathBuf,
}

impl Iptables {
    /// Finds `iptables` in `PATH`, `/usr/sbin` or `/sbin`.
    pub fn find() -> Result<Self, IptablesError> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|d| d.join("iptables"))
            .find(|p| p.is_file())
            .map(|bin| Self { bin })
            .ok_or(IptablesError::Missing)
    }

    /// The binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    fn run(&self, args: &[String]) -> Result<bool, IptablesError> {
        let out = capture(&self.bin, args)?;
        if out.status.success() {
            return Ok(true);
        }
        // Exit 1: "does not exist" for -C/-D/-N checks; 2+ are usage errors.
        if out.status.code() == Some(1) {
            return Ok(false);
        }
        Err(IptablesError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }

    fn fail(&self, args: &[String]) -> Result<(), IptablesError> {
        match self.run(args)? {
            true => Ok(()),
            false => Err(IptablesError::Failed {
                args: args.join(" "),
                stderr: "refused".to_owned(),
            }),
        }
    }

    /// Creates `chain` in `table` unless it exists.
    pub fn ensure_chain(&self, table: &str, chain: &str) -> Result<(), IptablesError> {
        let list = ["-w", "-t", table, "-S", chain].map(str::to_owned);
        if !self.run(&list)? {
            let create = ["-w", "-t", table, "-N", chain].map(str::to_owned);
            // A concurrent creator may win; re-check rather than fail.
            if !self.run(&create)? && !self.run(&list)? {
                return self.fail(&create);
            }
        }
        Ok(())
    }

    /// Every table's rules in one exec of `iptables-save` (next to
    /// `iptables`), for [`present`].
    pub fn save(&self) -> Result<String, IptablesError> {
        let bin = self.bin.with_file_name("iptables-save");
        let out = capture(&bin, &[])?;
        if !out.status.success() {
            return Err(IptablesError::Failed {
                args: bin.display().to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Whether `rule` is present.
    pub fn exists(&self, rule: &Rule) -> Result<bool, IptablesError> {
        self.run(&rule.cmd("-C"))
    }

    /// Adds `rule` unless it is present.
    pub fn ensure(&self, rule: &Rule) -> Result<(), IptablesError> {
        if !self.exists(rule)? {
            self.fail(&rule.cmd(if rule.first { "-I" } else { "-A" }))?;
        }
        Ok(())
    }

    /// Deletes `rule` if present (every copy of it).
    pub fn delete(&self, rule: &Rule) -> Result<(), IptablesError> {
        for _ in 0..8 {
            if !self.run(&rule.cmd("-D"))? {
                break;
            }
        }
        Ok(())
    }
}

/// Whether `iptables-save` output lists `chain` in `table`.
pub fn chain_present(save: &str, table: &str, chain: &str) -> bool {
    tables(save)
        .any(|(t, lines)| t == table && lines.iter().any(|l| l.starts_with(&format!(":{chain} "))))
}

fn tables(save: &str) -> impl Iterator<Item = (&str, Vec<&str>)> {
    save.split('*').skip(1).map(|block| {
        let mut lines = block.lines();
        let name = lines.next().unwrap_or("").trim();
        (name, lines.collect())
    })
}

/// Whether `iptables-save` output has `rule`: a line of its chain holding
/// every word of the rule (iptables adds implied matches such as `-m tcp`
/// and may reorder options, so this compares words, not lines).
pub fn present(save: &str, rule: &Rule) -> bool {
    let head = format!("-A {} ", rule.chain);
    tables(save).any(|(t, lines)| {
        t == rule.table
            && lines.iter().any(|l| {
                let Some(rest) = l.strip_prefix(&head) else {
                    return false;
                };
                let mut words: Vec<&str> = rest
                    .split_whitespace()
                    .map(|w| w.trim_matches('"'))
                    .collect();
                rule.args
                    .iter()
                    .all(|a| match words.iter().position(|w| w == a) {
                        Some(i) => {
                            words.swap_remove(i);
                            true
                        }
                        None => false,
                    })
            })
    })
}

/// Runs `bin` with its output in memory files rather than pipes.
///
/// A pipe would be read to EOF, and every container child cloned by another
/// thread meanwhile holds a copy of its write end until it execs, which it
/// does only after that thread's network setup, which may wait for the
/// leases lock we hold: a deadlock. Waiting for the process and then
/// reading a memfd depends on no other process.
fn capture(bin: &Path, args: &[String]) -> Result<std::process::Output, IptablesError> {
    use std::io::{Read, Seek};
    let spawn_err = |source: std::io::Error| IptablesError::Spawn {
        bin: bin.to_path_buf(),
        source,
    };
    let memfd = |name: &std::ffi::CStr| -> Result<std::fs::File, IptablesError> {
        nix::sys::memfd::memfd_create(name, nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
            .map(std::fs::File::from)
            .map_err(|e| spawn_err(e.into()))
    };
    let mut out = memfd(c"iptables-out")?;
    let mut err = memfd(c"iptables-err")?;
    let status = Command::new(bin)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().map_err(spawn_err)?)
        .stderr(err.try_clone().map_err(spawn_err)?)
        .status()
        .map_err(spawn_err)?;
    let read = |f: &mut std::fs::File| -> Result<Vec<u8>, IptablesError> {
        let mut v = Vec::new();
        f.rewind().map_err(spawn_err)?;
        f.read_to_end(&mut v).map_err(spawn_err)?;
        Ok(v)
    };
    Ok(std::process::Output {
        status,
        stdout: read(&mut out)?,
        stderr: read(&mut err)?,
    })
}

/// The chains we own, per table.
pub const CHAINS: [(&str, &str); 3] = [
    ("nat", DNAT_CHAIN),
    ("nat", POSTROUTING_CHAIN),
    ("filter", FORWARD_CHAIN),
];

/// The bridge's shared rules, in the order they are added.
pub fn bridge_rules(bridge: &str, subnet: Ipv4Net) -> Vec<Rule> {
    let net = subnet.trunc().to_string();
    let c = ["-m", "comment", "--comment", "bay"];
    let with =
        |a: &[&str]| -> Vec<String> { a.iter().chain(c.iter()).map(|s| (*s).to_owned()).collect() };
    let r = |table: &str, chain: &str, a: &[&str]| Rule {
        table: table.to_owned(),
        chain: chain.to_owned(),
        args: with(a),
        first: false,
    };
    vec![
        r(
            "nat",
            POSTROUTING_CHAIN,
            &["-s", &net, "!", "-o", bridge, "-j", "MASQUERADE"],
        ),
        // Loopback clients of published ports (route_localnet): the
        // container must answer the gateway, not its own 127.0.0.1.
        r(
            "nat",
            POSTROUTING_CHAIN,
            &["-s", "127.0.0.0/8", "-o", bridge, "-j", "MASQUERADE"],
        ),
        r(
            "filter",
            FORWARD_CHAIN,
            &[
                "-o",
                bridge,
                "-m",
                "conntrack",
                "--ctstate",
                "RELATED,ESTABLISHED,DNAT",
                "-j",
                "ACCEPT",
            ],
        ),
        r("filter", FORWARD_CHAIN, &["-i", bridge, "-j", "ACCEPT"]),
        // route_localnet lets 127.x through bay0: containers must still not
        // reach the host's loopback services. Only new flows: replies to
        // the host's own connections come back de-NAT'ed to 127.0.0.1.
        r(
            "filter",
            "INPUT",
            &[
                "-i",
                bridge,
                "-d",
                "127.0.0.0/8",
                "-m",
                "conntrack",
                "!",
                "--ctstate",
                "RELATED,ESTABLISHED",
                "-j",
                "DROP",
            ],
        )
        .first(),
        r("filter", "FORWARD", &["-j", FORWARD_CHAIN]).first(),
        r(
            "nat",
            "PREROUTING",
            &["-m", "addrtype", "--dst-type", "LOCAL", "-j", DNAT_CHAIN],
        ),
        r(
            "nat",
            "OUTPUT",
            &["-m", "addrtype", "--dst-type", "LOCAL", "-j", DNAT_CHAIN],
        ),
        r("nat", "POSTROUTING", &["-j", POSTROUTING_CHAIN]),
    ]
}

/// The rules publishing `host_port` on `host_ip` (every local address if
/// `None`) to `ip:container_port` of container `tag`.
pub fn port_rules(
    tag: &str,
    ip: Ipv4Addr,
    host_ip: Option<Ipv4Addr>,
    host_port: u16,
    container_port: u16,
    proto: Protocol,
) -> Vec<Rule> {
    let comment = format!("bay:{tag}");
    let p = proto.as_str();
    let hp = host_port.to_string();
    let cp = container_port.to_string();
    let dest = format!("{ip}:{container_port}");
    let me = format!("{ip}/32");
    let mut dnat: Vec<String> = Vec::new();
    if let Some(h) = host_ip {
        dnat.extend(["-d".to_owned(), format!("{h}/32")]);
    }
    dnat.extend(
        [
            "-p",
            p,
            "-m",
            p,
            "--dport",
            &hp,
            "-m",
            "comment",
            "--comment",
            &comment,
            "-j",
            "DNAT",
            "--to-destination",
            &dest,
        ]
        .map(str::to_owned),
    );
    vec![
        Rule {
            table: "nat".to_owned(),
            chain: DNAT_CHAIN.to_owned(),
            args: dnat,
            first: false,
        },
        // Hairpin: the container reaching itself through its published port.
        Rule::new(
            "nat",
            POSTROUTING_CHAIN,
            &[
                "-s",
                &me,
                "-d",
                &me,
                "-p",
                p,
                "-m",
                p,
                "--dport",
                &cp,
                "-m",
                "comment",
                "--comment",
                &comment,
                "-j",
                "MASQUERADE",
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_is_read_from_iptables_save_output() {
        let save = "# Generated by iptables-save\n*nat\n:PREROUTING ACCEPT [0:0]\n:BAY-DNAT - [0:0]\n-A BAY-DNAT -d 127.0.0.1/32 -p tcp -m tcp --dport 18080 -m comment --comment \"bay:abc\" -j DNAT --to-destination 172.31.0.2:80\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -d 127.0.0.0/8 -i bay0 -m conntrack ! --ctstate RELATED,ESTABLISHED -m comment --comment bay -j DROP\nCOMMIT\n";
        let p = port_rules(
            "abc",
            "172.31.0.2".parse().unwrap(),
            Some(Ipv4Addr::LOCALHOST),
            18080,
            80,
            Protocol::Tcp,
        );
        assert!(present(save, &p[0]));
        assert!(!present(save, &p[1]), "the hairpin rule is missing");
        let other = port_rules(
            "abc",
            "172.31.0.3".parse().unwrap(),
            Some(Ipv4Addr::LOCALHOST),
            18080,
            80,
            Protocol::Tcp,
        );
        assert!(!present(save, &other[0]));
        let rules = bridge_rules("bay0", "172.31.0.0/16".parse().unwrap());
        let input = rules.iter().find(|r| r.chain == "INPUT").unwrap();
        assert!(present(save, input));
        let mut wrong_table = input.clone();
        wrong_table.table = "nat".into();
        assert!(!present(save, &wrong_table));
        assert!(chain_present(save, "nat", DNAT_CHAIN));
        assert!(!chain_present(save, "filter", DNAT_CHAIN));
    }

    #[test]
    fn rules_are_tagged_and_scoped_to_the_bridge() {
        let rules = bridge_rules("bay0", "172.31.0.0/16".parse().unwrap());
        for r in &rules {
            let joined = r.args.join(" ");
            assert!(joined.contains("--comment bay"), "{joined}");
            if r.chain == "INPUT" || r.chain.starts_with("BAY-POST") || r.chain == FORWARD_CHAIN {
                assert!(joined.contains("bay0"), "{joined}");
            }
        }
        assert_eq!(
            rules[0].cmd("-C").join(" "),
            "-w -t nat -C BAY-POSTROUTING -s 172.31.0.0/16 ! -o bay0 -j MASQUERADE -m comment --comment bay"
        );
        let jump = rules.iter().find(|r| r.chain == "FORWARD").unwrap();
        assert_eq!(
            jump.cmd("-I")[..6],
            ["-w", "-t", "filter", "-I", "FORWARD", "1"].map(str::to_owned)
        );

        let p = port_rules(
            "abc",
            "172.31.0.2".parse().unwrap(),
            Some(Ipv4Addr::LOCALHOST),
            18080,
            80,
            Protocol::Tcp,
        );
        assert_eq!(
            p[0].cmd("-A").join(" "),
            "-w -t nat -A BAY-DNAT -d 127.0.0.1/32 -p tcp -m tcp --dport 18080 -m comment --comment bay:abc -j DNAT --to-destination 172.31.0.2:80"
        );
        let any = port_rules(
            "abc",
            "172.31.0.2".parse().unwrap(),
            None,
            53,
            53,
            Protocol::Udp,
        );
        assert!(!any[0].args.contains(&"-d".to_owned()));
        assert!(any[1].args.join(" ").contains("-p udp -m udp --dport 53"));
    }
}
