//! The bridge network: `bay0`, eth0 with a leased address, the gateway and
//! other containers reachable, `-p` from the host's loopback, the per-
//! container /etc files, and nothing left behind after exit. Traffic stays
//! on loopback and the bridge's namespaces.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use bay_runtime::network::iptables::Iptables;
use bay_runtime::network::leases::{Lease, LeaseStore, boot_id};
use bay_runtime::network::netlink::Netlink;
use bay_runtime::network::{NetworkOptions, PortMapping, veth_name};
use bay_runtime::spec::{MountSpec, NetworkMode, RunOptions};
use bay_runtime::{ContainerId, Stdio, StdioConfig};

use crate::support::{Env, env, new_id, sh, spec};

macro_rules! require_net {
    ($name:expr) => {
        crate::support::require_env!($name);
        if Iptables::find().is_err() {
            eprintln!("SKIP {}: iptables is not installed", $name);
            return;
        }
    };
}

fn nat_rules() -> String {
    let ipt = Iptables::find().unwrap();
    let out = std::process::Command::new(ipt.bin())
        .args(["-w", "-t", "nat", "-S"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn link_exists(name: &str) -> bool {
    Netlink::open().unwrap().link_index(name).unwrap().is_some()
}

/// A free TCP port on 127.0.0.1 (closed again before use).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s =
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

/// Starts `script` detached from the test (stdout/stderr to the test's).
fn start<'e>(
    env: &'e Env,
    id: &ContainerId,
    script: &str,
    mut opts: RunOptions,
) -> bay_runtime::Container<'e> {
    opts.cmd = vec!["/bin/sh".into(), "-c".into(), script.into()];
    let sp = spec(env, id, &opts);
    let mut c = env.rt.create(id.clone(), &sp, &env.image).unwrap();
    c.start(StdioConfig {
        stdin: Stdio::Null,
        stdout: Stdio::Inherit,
        stderr: Stdio::Inherit,
    })
    .unwrap();
    c
}

fn gateway() -> String {
    let nl = &mut Netlink::open().unwrap();
    let idx = nl.link_index("bay0").unwrap().unwrap();
    nl.addresses4(idx).unwrap()[0].0.to_string()
}

#[test]
fn bridge_gives_eth0_an_address_and_reaches_the_gateway() {
    require_net!("bridge_gives_eth0_an_address_and_reaches_the_gateway");
    let env = env();
    let out = sh(
        &env,
        "ip -o -4 addr show; ip route; ping -c1 -W2 $(ip route | awk '/default/ {print $3}') >/dev/null && echo PING_OK",
        RunOptions::default(),
    );
    assert_eq!(out.status.code, 0, "{}{}", out.stdout, out.stderr);
    let gw = gateway();
    let prefix: Vec<&str> = gw.split('.').take(2).collect();
    let prefix = format!("{}.{}.", prefix[0], prefix[1]);
    let eth0 = out
        .stdout
        .lines()
        .find(|l| l.contains("eth0") && l.contains("inet "))
        .unwrap_or_else(|| panic!("no eth0 address: {}", out.stdout));
    assert!(
        eth0.contains(&format!("inet {prefix}")),
        "{eth0} not in {prefix}0.0/16"
    );
    assert!(
        out.stdout.contains("lo    inet 127.0.0.1/8") || out.stdout.contains("lo inet 127.0.0.1"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("default via {gw} dev eth0")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("PING_OK"),
        "{}{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn containers_reach_each_other_by_ip() {
    require_net!("containers_reach_each_other_by_ip");
    let env = env();
    let id = new_id();
    let mut server = start(
        &env,
        &id,
        "mkdir /www && echo peer-ok > /www/index.html && exec httpd -f -p 80 -h /www",
        RunOptions::default(),
    );
    let ip = env.rt.network().lease(&id).unwrap().unwrap().ip;
    let out = sh(
        &env,
        &format!(
            "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 80 | tail -n1 | grep . && exit 0; sleep 0.2; done; exit 1"
        ),
        RunOptions::default(),
    );
    server.kill(libc::SIGKILL).unwrap();
    server.wait().unwrap();
    server.delete(false).unwrap();
    assert_eq!(out.stdout, "peer-ok\n", "{}", out.stderr);
}

#[test]
fn published_port_serves_the_hosts_loopback_and_is_cleaned_up() {
    require_net!("published_port_serves_the_hosts_loopback_and_is_cleaned_up");
    let env = env();
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "hello from bay\n").unwrap();
    let port = free_port();
    let id = new_id();
    let opts = RunOptions {
        network_options: NetworkOptions {
            publish: vec![
                format!("127.0.0.1:{port}:80")
                    .parse::<PortMapping>()
                    .unwrap(),
            ],
            ..Default::default()
        },
        mounts: vec![MountSpec::Bind {
            source: www.path().to_path_buf(),
            target: "/www".into(),
            read_only: true,
        }],
        ..Default::default()
    };
    let mut c = start(&env, &id, "exec httpd -f -p 80 -h /www", opts);
    let lease = env
        .rt
        .network()
        .lease(&id)
        .unwrap()
        .expect("a lease while running");
    let veth = veth_name(id.as_str());
    assert_eq!(lease.veth, veth);
    assert!(link_exists(&veth));
    let tag = format!("bay:{}", id.short());
    assert!(nat_rules().contains(&tag), "{}", nat_rules());

    let deadline = Instant::now() + Duration::from_secs(5);
    let body = loop {
        match http_get(port, "/index.html") {
            Ok(b) if b.contains("200 OK") => break b,
            other if Instant::now() > deadline => {
                panic!("no answer on 127.0.0.1:{port}: {other:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    assert!(body.ends_with("\r\n\r\nhello from bay\n"), "{body}");

    c.kill(libc::SIGKILL).unwrap();
    c.wait().unwrap();
    // Exit released everything: lease, rules, veth (with the namespace).
    assert!(env.rt.network().lease(&id).unwrap().is_none());
    assert!(!nat_rules().contains(&tag), "{}", nat_rules());
    assert!(!link_exists(&veth));
    assert!(
        http_get(port, "/").is_err(),
        "the port is closed after exit"
    );
    c.delete(false).unwrap();
}

#[test]
fn hosts_hostname_and_resolv_conf_are_written_per_container() {
    require_net!("hosts_hostname_and_resolv_conf_are_written_per_container");
    let env = env();
    let opts = RunOptions {
        hostname: Some("web1".into()),
        network_options: NetworkOptions {
            dns: vec!["192.0.2.53".parse().unwrap()],
            dns_search: vec!["corp.example".into()],
            extra_hosts: vec![
                "db:192.0.2.7".parse().unwrap(),
                "gw:host-gateway".parse().unwrap(),
            ],
            ..Default::default()
        },
        ..Default::default()
    };
    let out = sh(
        &env,
        "cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; cat /etc/hostname; hostname; ip -o -4 addr show eth0",
        opts,
    );
    assert_eq!(out.status.code, 0, "{}", out.stderr);
    let parts: Vec<&str> = out.stdout.split("---\n").collect();
    let (hosts, resolv, rest) = (parts[0], parts[1], parts[2]);
    let ip = rest
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("{rest}"));
    assert!(
        hosts.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
        "{hosts}"
    );
    assert!(hosts.contains("192.0.2.7\tdb\n"), "{hosts}");
    assert!(hosts.contains(&format!("{}\tgw\n", gateway())), "{hosts}");
    assert!(hosts.ends_with(&format!("{ip}\tweb1\n")), "{hosts}");
    assert!(resolv.contains("nameserver 192.0.2.53\n"), "{resolv}");
    assert!(!resolv.contains("nameserver 127."), "{resolv}");
    assert!(resolv.contains("search corp.example\n"), "{resolv}");
    assert!(rest.starts_with("web1\nweb1\n"), "{rest}");

    // Without --dns: the host's resolvers minus loopback ones, or docker's
    // fallback when nothing is left.
    let out = sh(&env, "cat /etc/resolv.conf", RunOptions::default());
    let host = bay_runtime::network::files::host_resolv_conf();
    let want = bay_runtime::network::files::resolv_conf(&host, &NetworkOptions::default(), true);
    assert_eq!(out.stdout, want);
    assert!(out.stdout.contains("nameserver "), "{}", out.stdout);
    assert!(!out.stdout.contains("nameserver 127."), "{}", out.stdout);
}

#[test]
fn network_none_still_has_only_lo() {
    require_net!("network_none_still_has_only_lo");
    let env = env();
    let out = sh(
        &env,
        "ip -o link show | awk -F': ' '{print $2}'; cat /etc/hosts",
        RunOptions {
            network: NetworkMode::None,
            ..Default::default()
        },
    );
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("lo"), "{}", out.stdout);
    assert_eq!(lines.next(), Some("127.0.0.1\tlocalhost"), "{}", out.stdout);
    assert!(!out.stdout.contains("eth0"), "{}", out.stdout);
}

#[test]
fn stale_leases_are_reclaimed_with_their_rules() {
    require_net!("stale_leases_are_reclaimed_with_their_rules");
    let env = env();
    // Make sure the bridge and its chains exist.
    assert_eq!(sh(&env, "true", RunOptions::default()).status.code, 0);
    // A lease whose process is gone (pid 1 with a wrong start time), with a
    // port rule as a crashed `bay` would leave it.
    let port = free_port();
    let fake = new_id();
    let rules = bay_runtime::network::iptables::port_rules(
        fake.short(),
        "172.31.255.250".parse().unwrap(),
        Some(Ipv4Addr::LOCALHOST),
        port,
        80,
        bay_runtime::network::Protocol::Tcp,
    );
    let ipt = Iptables::find().unwrap();
    for r in &rules {
        ipt.ensure(r).unwrap();
    }
    let tag = format!("bay:{}", fake.short());
    assert!(nat_rules().contains(&tag));
    let cfg = env.rt.network().config();
    let store = LeaseStore::new(cfg.state_dir.join(&cfg.bridge));
    {
        let locked = store.lock().unwrap();
        let mut leases = locked.load().unwrap();
        leases.leases.push(Lease {
            id: fake.as_str().to_owned(),
            ip: "172.31.255.250".parse().unwrap(),
            veth: veth_name(fake.as_str()),
            pid: 1,
            pid_start: Some(u64::MAX),
            boot_id: boot_id(),
            pending_since: None,
            ports: vec![format!("127.0.0.1:{port}:80").parse().unwrap()],
            rules,
        });
        locked.save(&leases).unwrap();
    }
    // The next start reclaims it.
    assert_eq!(sh(&env, "true", RunOptions::default()).status.code, 0);
    assert!(env.rt.network().lease(&fake).unwrap().is_none());
    assert!(!nat_rules().contains(&tag), "{}", nat_rules());
}
